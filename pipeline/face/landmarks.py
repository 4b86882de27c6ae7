"""Dense 68-point landmarks (dlib's iBUG 300-W layout) and what they say about a face.

`landmark_predictor` loads dlib's shape predictor and `find_landmarks68` runs it; everything else here is plain
numpy on 68×2 arrays: mirroring, head pose and expression features, and the
polygons that the warp, the masks and the skin statistics are built from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import PipelineError

JAW = list(range(0, 17))
BROWS = list(range(17, 27))
NOSE = list(range(27, 36))
LEFT_EYE = list(range(36, 42))  # left as seen in the photo
RIGHT_EYE = list(range(42, 48))
OUTER_LIPS = list(range(48, 60))
INNER_LIPS = list(range(60, 68))

# Index of each point's mirror image (left↔right), for flipping a face horizontally.
MIRROR = np.array(
    list(range(16, -1, -1))  # jaw
    + list(range(26, 16, -1))  # brows
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]  # nose bridge, then nostrils reversed
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65]  # inner lips
)

FOREHEAD_LIFT = 0.35  # how far the region is lifted above the brows, in eye-to-mouth distances


@dataclass(frozen=True)
class FaceFeatures:
    """Pose and expression read from 68 landmarks; all unitless so faces of any size compare."""

    yaw: float  # -1 (nose far left in the picture) .. 1 (far right); 0 frontal
    roll_degrees: float  # angle of the line between the eyes
    mouth_open: float  # inner-lip gap / mouth width
    smile: float  # mouth width / eye distance
    size_px: float  # eye-to-mouth distance in pixels, the face's scale
    eyes_open: float  # eye height / eye width, both eyes averaged: about 0.3 open, under 0.15 closed


def landmark_predictor(weights_dir: Path):
    """dlib's 68-point shape predictor from the weights folder.

    Raises:
        PipelineError: dlib is not installed; MissingWeights: its model file is missing.
    """
    from pipeline import weights

    try:
        import dlib
    except ImportError:
        raise PipelineError(
            f"the dlib package is not installed; install it with: {weights.MODELS_INSTALL_COMMAND}", "mode_unavailable"
        ) from None
    return dlib.shape_predictor(str(weights.locate("dlib_landmarks68", weights_dir)))


def find_landmarks68(predictor, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The 68 landmarks of the face in `box` (x1, y1, x2, y2), as a 68×2 float array.

    Args:
        predictor: a `dlib.shape_predictor` for the 68-point model.
        image: H×W×3 uint8 RGB.
        box: the face box; it is squared on its centre, the way dlib's own detector frames faces.
    """
    import dlib

    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    rect = dlib.rectangle(int(round(cx - side / 2)), int(round(cy - side / 2)), int(round(cx + side / 2)), int(round(cy + side / 2)))
    shape = predictor(np.ascontiguousarray(image), rect)
    return np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], dtype=np.float64)


def dlib_box_from_five(landmarks5: np.ndarray) -> tuple[float, float, float, float]:
    """A square box around the eyes and mouth, framed like dlib's frontal detector (brows to chin)."""
    points = np.asarray(landmarks5, dtype=np.float64)
    eyes, mouth = points[:2].mean(axis=0), points[3:].mean(axis=0)
    eye_to_mouth = float(np.hypot(*(mouth - eyes)))
    eye_distance = float(np.hypot(*(points[1] - points[0])))
    side = max(2.1 * eye_to_mouth, 1.9 * eye_distance)
    centre = (eyes + mouth) / 2 + (mouth - eyes) * 0.15
    return (centre[0] - side / 2, centre[1] - side / 2, centre[0] + side / 2, centre[1] + side / 2)


def five_from_68(points: np.ndarray) -> np.ndarray:
    """The five-point layout (eye centres, nose tip, mouth corners) from 68 points."""
    points = np.asarray(points, dtype=np.float64)
    return np.array([points[LEFT_EYE].mean(axis=0), points[RIGHT_EYE].mean(axis=0), points[30], points[48], points[54]])


def eye_to_mouth(five: np.ndarray) -> float:
    """Distance from the eyes' midpoint to the mouth's in five points (never 0): the face's size that pose leaves alone."""
    five = np.asarray(five, dtype=np.float64)
    return max(1e-6, float(np.hypot(*(five[3:].mean(axis=0) - five[:2].mean(axis=0)))))


def landmark_disagreement(points68: np.ndarray, five: np.ndarray) -> float:
    """Mean distance between dlib's five points and the detector's, in eye-to-mouth distances."""
    return float(np.hypot(*(five_from_68(points68) - five).T).mean() / eye_to_mouth(five))


def eye_disagreement(points68: np.ndarray, five: np.ndarray) -> float:
    """Mean distance between dlib's eye centres and the detector's, in eye-to-mouth distances."""
    return float(np.hypot(*(five_from_68(points68)[:2] - np.asarray(five)[:2]).T).mean() / eye_to_mouth(five))


def eye_ratio(five: np.ndarray) -> float:
    """Eye distance / eye-to-mouth distance of five points: about 1 frontal, towards 0 in profile."""
    five = np.asarray(five, dtype=np.float64)
    return float(np.hypot(*(five[1] - five[0])) / eye_to_mouth(five))


def mirror_landmarks(points: np.ndarray, width: int) -> np.ndarray:
    """The landmarks of the horizontally flipped image of `width` pixels, in the same index order."""
    flipped = np.asarray(points, dtype=np.float64).copy()
    flipped[:, 0] = width - 1 - flipped[:, 0]
    return flipped[MIRROR]


def face_features(points: np.ndarray) -> FaceFeatures:
    """Head pose and expression from 68 landmarks."""
    points = np.asarray(points, dtype=np.float64)
    left, right = points[0], points[16]
    span = right[0] - left[0]
    yaw = 0.0 if abs(span) < 1e-6 else float(np.clip(((points[30, 0] - left[0]) / span - 0.5) * 2, -1, 1))
    left_eye, right_eye = points[LEFT_EYE].mean(axis=0), points[RIGHT_EYE].mean(axis=0)
    roll = math.degrees(math.atan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0]))
    mouth_width = max(1e-6, float(np.hypot(*(points[64] - points[60]))))
    gap = float(np.hypot(*(points[66] - points[62])))
    eye_distance = max(1e-6, float(np.hypot(*(right_eye - left_eye))))
    outer_width = float(np.hypot(*(points[54] - points[48])))
    mouth = (points[48] + points[54]) / 2
    return FaceFeatures(
        yaw=yaw,
        roll_degrees=roll,
        mouth_open=gap / mouth_width,
        smile=outer_width / eye_distance,
        size_px=float(np.hypot(*(mouth - (left_eye + right_eye) / 2))),
        eyes_open=(eye_openness(points[LEFT_EYE]) + eye_openness(points[RIGHT_EYE])) / 2,
    )


def eye_openness(eye: np.ndarray) -> float:
    """Eye aspect ratio of one eye's six points: mean lid-to-lid height over corner-to-corner width."""
    width = max(1e-6, float(np.hypot(*(eye[3] - eye[0]))))
    return float(np.hypot(*(eye[1] - eye[5])) + np.hypot(*(eye[2] - eye[4]))) / (2 * width)


def face_outline(points: np.ndarray) -> np.ndarray:
    """Polygon of the face from chin to a little above the brows: the region replace mode changes."""
    points = np.asarray(points, dtype=np.float64)
    eyes = (points[LEFT_EYE].mean(axis=0) + points[RIGHT_EYE].mean(axis=0)) / 2
    mouth = (points[48] + points[54]) / 2
    up = eyes - mouth
    lifted = points[BROWS[::-1]] + FOREHEAD_LIFT * up
    return np.concatenate([points[JAW], lifted])


def fill_polygon(shape: tuple[int, int], polygon: np.ndarray, convex: bool = True) -> np.ndarray:
    """Float32 mask of `shape` (h, w): 1 inside the polygon (its convex hull when `convex`)."""
    mask = np.zeros(shape, dtype=np.float32)
    points = np.round(np.asarray(polygon)).astype(np.int32)
    if convex:
        points = cv2.convexHull(points)
    cv2.fillPoly(mask, [points.reshape(-1, 2)], 1.0, lineType=cv2.LINE_8)
    return mask


def feature_mask(shape: tuple[int, int], points: np.ndarray, grow_px: float) -> np.ndarray:
    """Float32 mask of the eyes, brows and lips (grown by `grow_px`): never skin-coloured, never occluders."""
    mask = np.zeros(shape, dtype=np.float32)
    for group in (LEFT_EYE, RIGHT_EYE, OUTER_LIPS):
        mask = np.maximum(mask, fill_polygon(shape, points[group]))
    for brow in (BROWS[:5], BROWS[5:]):
        cv2.polylines(mask, [np.round(points[brow]).astype(np.int32)], False, 1.0, thickness=max(1, int(round(grow_px))))
    if grow_px >= 1:
        size = 2 * int(round(grow_px)) + 1
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    return mask


def eye_band(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Float32 mask of the skin between the brows and the middle of the nose, without the eyes.

    This band is rarely covered by medical masks, hands or beards, so it is the
    reference for the face's own skin colour.
    """
    points = np.asarray(points, dtype=np.float64)
    polygon = np.concatenate([points[[17, 18, 19, 20, 21, 22, 23, 24, 25, 26]], points[[15, 29, 1]]])
    band = fill_polygon(shape, polygon)
    eyes = feature_mask(shape, points, grow_px=max(1.0, 0.08 * face_features(points).size_px))
    return band * (1 - eyes)
