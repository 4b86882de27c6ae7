"""Donor lower-face transplant: hidden landmarks from the visible ones, the donor warped onto them, a soft mask.

Plain numpy and OpenCV on 68×2 landmark arrays (dlib's iBUG layout) in the
pixels of replace mode's work crop.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.align import transform_points
from pipeline.face.colour import transfer_colour
from pipeline.face.landmarks import BROWS, JAW, LEFT_EYE, RIGHT_EYE, face_outline, feature_mask, fill_polygon, five_from_68
from pipeline.face.covering import face_frame

VISIBLE = BROWS + LEFT_EYE + RIGHT_EYE  # the 68-point landmarks a face mask never hides
FIVE_WEIGHTS = np.array([1.0, 1.0, 3.0, 3.0, 3.0])  # the detector's nose and mouth are the only hint below the mask
DILATE = 0.08  # the covering is grown by this fraction of the face size (eye-to-mouth) ...
FEATHER = 0.05  # ... and softened over this fraction
JAW_GROWTH = 0.03  # the donor's pixels reach this far outside the estimated jaw; beyond it, inpainting
INPAINT_RADIUS = 0.05  # OpenCV inpainting radius, as a fraction of the face size
MAX_EYE_DISAGREEMENT = 0.2  # dlib's eyes further than this from the detector's (eye-to-mouth distances) are not trusted
BELOW_EYES = (0.05, 0.15)  # the blend fades in between these depths (eye-to-mouth distances below the eyes)


def fit_affine(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares 2×3 affine taking source points onto target points."""
    rows = np.hstack([source, np.ones((len(source), 1))]) * np.sqrt(weights)[:, None]
    solution, *_ = np.linalg.lstsq(rows, target * np.sqrt(weights)[:, None], rcond=None)
    return solution.T


def fit_donor_shape(donor_points: np.ndarray, target_points: np.ndarray, target_five: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The donor's 68-point shape fitted to what is visible of the target.

    When dlib's eyes disagree with the detector's (dlib lost the face under the
    mask), only the detector's five points are used.

    Args:
        donor_points: the donor's 68 landmarks in donor pixels.
        target_points: dlib's 68 landmarks of the target; only the eyes and brows are used.
        target_five: the detector's five landmarks of the target (it guesses nose and mouth through masks).

    Returns:
        (2×3 affine donor pixels -> target pixels, the estimated 68 target landmarks)
    """
    donor_points = np.asarray(donor_points, dtype=np.float64)
    source = np.concatenate([donor_points[VISIBLE], five_from_68(donor_points)])
    target = np.concatenate([np.asarray(target_points, dtype=np.float64)[VISIBLE], np.asarray(target_five, dtype=np.float64)])
    trusted = eye_disagreement(target_points, target_five) <= MAX_EYE_DISAGREEMENT
    weights = np.concatenate([np.full(len(VISIBLE), 1.0 if trusted else 0.0), FIVE_WEIGHTS])
    affine = fit_affine(source, target, weights)
    return affine, transform_points(donor_points, affine)


def eye_disagreement(points: np.ndarray, five: np.ndarray) -> float:
    """Mean distance between dlib's eye centres and the detector's, in eye-to-mouth distances."""
    five = np.asarray(five, dtype=np.float64)
    eye_to_mouth = max(1e-6, float(np.hypot(*(five[3:].mean(axis=0) - five[:2].mean(axis=0)))))
    return float(np.hypot(*(five_from_68(points)[:2] - five[:2]).T).mean() / eye_to_mouth)


def render_lower_face(
    donor_image: np.ndarray, donor_points: np.ndarray, crop: np.ndarray, points: np.ndarray,
    five: np.ndarray, visible_skin: np.ndarray, covered: np.ndarray, face_px: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The donor warped onto the target's estimated landmarks, with the target's colour and light.

    Inside the estimated jaw the pixels are the donor's; outside it (a mask's
    sides and the part under the chin) the donor shows only its background, so
    there the target itself is inpainted from around the covering.

    Args:
        covered: h×w covering of the target, in the crop's pixels.

    Returns:
        (h×w×3 uint8 new pixels over the crop, the estimated 68 landmarks)
    """
    affine, estimated = fit_donor_shape(donor_points, points, five)
    height, width = crop.shape[:2]
    warped = cv2.warpAffine(donor_image, affine, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    face_region = fill_polygon((height, width), face_outline(estimated))
    donor_skin = face_region * (1 - feature_mask((height, width), estimated, grow_px=0.03 * face_px))
    coloured = transfer_colour(warped, crop, donor_skin, visible_skin * face_region, face_px)
    hole = cv2.dilate((covered > 0.2).astype(np.uint8), np.ones((5, 5), np.uint8))
    filled = cv2.inpaint(crop, hole, max(2.0, INPAINT_RADIUS * face_px), cv2.INPAINT_TELEA)
    jaw = donor_face_region((height, width), estimated, face_px)
    new_pixels = coloured * jaw[..., None] + filled * (1 - jaw[..., None])
    return np.clip(np.round(new_pixels), 0, 255).astype(np.uint8), estimated


def donor_face_region(shape: tuple[int, int], estimated: np.ndarray, face_px: float) -> np.ndarray:
    """Soft h×w mask of the donor's own face (jaw line up to the brows), slightly grown."""
    jaw = fill_polygon(shape, np.concatenate([estimated[JAW], estimated[VISIBLE]]))
    reach = max(1, int(round(JAW_GROWTH * face_px)))
    jaw = cv2.dilate(jaw, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1)))
    return cv2.GaussianBlur(jaw, (0, 0), max(1.0, FEATHER * face_px / 2))


def unmask_blend_mask(covered: np.ndarray, five: np.ndarray, face_px: float) -> np.ndarray:
    """Where the new pixels go: the covering, dilated and feathered, below the eyes only."""
    shape = covered.shape
    radius = max(1, int(round(DILATE * face_px)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    grown = cv2.dilate((covered > 0.2).astype(np.float32), kernel)
    depth = face_frame(shape, five).v
    below_eyes = np.clip((depth - BELOW_EYES[0]) / (BELOW_EYES[1] - BELOW_EYES[0]), 0.0, 1.0).astype(np.float32)
    mask = cv2.GaussianBlur(grown, (0, 0), max(1.0, FEATHER * face_px)) * below_eyes
    border = np.zeros(shape, np.float32)
    edge = max(2, radius)
    border[edge:-edge, edge:-edge] = 1.0
    return np.minimum(mask, border).clip(0, 1).astype(np.float32)
