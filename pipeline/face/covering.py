"""Is a face masked, and where is the mask? Classical, no training data, plain numpy and OpenCV.

The face is cut out at a fixed working scale and laid out in face coordinates
from its five detector landmarks: `u` across the face in eye distances (0 between
the eyes), `v` down the face in eye-to-mouth distances (0 at the eyes, 1 at the
mouth). Detector boxes of masked faces often stop above the chin, so everything
here is measured from the landmarks, never from the box.

1. The face's own skin is modelled from the area above the eyes that masks do
   not reach: between the eyes and the lower forehead (median LAB and a robust
   spread of its chroma).
2. Each pixel of the lower face (nose to chin) gets a distance to that skin model:
   chroma distance in spreads, plus lightness far outside the skin's range
   (black and white masks), with shadows tolerated. Two cases are softened,
   because bare faces read as masked without it (18 of our 50 bare test faces):
   a pixel of skin hue and chroma is at most "maybe not skin" (warm light on the
   chin, a pale forehead highlight as the reference; for the probability, in
   colour photos also when it is much lighter or darker, its chroma judged for
   its lightness: a smile's lit cheeks, a face looking down into shade), and in a black-and-white
   photo only much darker pixels count (a moustache or a shadow is nearly as dark
   as a black mask; a full black beard still reads as one).
3. The probability is a logistic of the share of the lower face that is not skin
   (the lips are left out: they are never skin-coloured).
4. The pixel mask: the lower face's non-skin pixels, grown by GrabCut seeded
   with them as foreground and the reference skin as background, kept to the
   region from below the eyes to under the chin, then the part connected to the
   lower face.
5. Then grown by the mask's own colour (`grow_by_mask_colour`): rims, the far
   side of a turned face and the start of the ear loops, which the region drawn
   from the detector's landmarks (guesses under a mask) misses.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.align import compose, transform_points
from pipeline.face.colour import to_lab
from pipeline.types import MASKED_THRESHOLD

WORK_EYE_TO_MOUTH = 36.0  # the face is resampled so its eye-to-mouth distance is this many pixels
# Logistic of the lower face's non-skin share: 0.5 at CENTRE, steepness 1/SLOPE.
SHARE_CENTRE = 0.62
SHARE_SLOPE = 0.05
CHROMA_SPREAD_LIMITS = (3.0, 6.0)  # robust chroma spread of the reference skin, LAB units
LIGHTNESS_TOLERANCE = (22.0, 35.0)  # lighter by more than this is not skin (white masks) ...
DARKNESS_TOLERANCE = (30.0, 45.0)  # ... nor darker by more than this (black masks; shadows are milder)
GREY_DARKNESS_TOLERANCE = (50.0, 65.0)  # ... in a black-and-white photo, where a moustache is as grey as a mask
HAIR_DARKER = 20.0  # reference pixels this much darker (LAB L) than its bright quarter are hair, not skin
SKIN_HUE_DEGREES = (15.0, 75.0)  # LAB hue angles of skin under ordinary light ...
SKIN_LOCUS_MIN_CHROMA = 0.5  # ... with at least this share of the reference skin's chroma:
SKIN_LOCUS_DISTANCE = 0.5  # such a pixel's chroma distance is capped here
SKIN_HUE_TOLERANCE = 16.0  # skin in light or shade keeps its hue within this many degrees ...
RELIT_MAX_CHROMA = 1.5  # ... and at most this share of its chroma (for its lightness)
GREY_CHROMA = 4.0  # reference skin with less chroma (LAB units) is a black-and-white photo
NOT_SKIN = 1.0  # a pixel is not skin when its distance reaches this
GRABCUT_ITERATIONS = 3
MIN_COVERED_SHARE = 0.5  # a pixel mask counts as covering the lower face from this share of it
MASK_COLOUR_SPREAD = 2.5  # a pixel is of the mask's colour within this many robust spreads of the mask's median (LAB) ...
MASK_COLOUR_MIN_SPREAD = (8.0, 3.0, 3.0)  # ... each spread at least this (L, a, b), so a plain mask's shading counts
MAYBE_SKIN = 0.5  # ... and when its skin distance is at least this
ONLY_MASK_COLOUR_FROM = 1.1  # below this depth (eye-to-mouth distances), only the mask's chroma is the mask beside nose_to_chin
GROWTH_REACH = (1.3, 0.08, 1.9)  # the mask grows up to |u| <= first, v from second (masks ride up to the lower lids) to third


@dataclass(frozen=True)
class Covering:
    """A face's mask probability and where its covering is, in a working crop of the photo."""

    probability: float
    pixels: np.ndarray  # h×w float32 in [0, 1]: the covering, over the working crop
    matrix: np.ndarray  # 2×3: photo pixels -> working-crop pixels
    lower_share: float  # share of the lower face that is not skin
    covered_share: float  # share of the lower face that the colour evidence (before the prior shape) covers

    @property
    def masked(self) -> bool:
        return self.probability >= MASKED_THRESHOLD


@dataclass(frozen=True)
class FaceFrame:
    """Face coordinates over a working crop: origin between the eyes, `u` in eye distances, `v` in eye-to-mouth distances."""

    u: np.ndarray  # h×w
    v: np.ndarray  # h×w
    eye_to_mouth_px: float


def face_frame(shape: tuple[int, int], five: np.ndarray) -> FaceFrame:
    """Face coordinates for every pixel of a crop of `shape` (h, w), from five landmarks in its pixels."""
    five = np.asarray(five, dtype=np.float64)
    eyes, mouth = five[:2].mean(axis=0), five[3:].mean(axis=0)
    axis = mouth - eyes
    eye_to_mouth = max(float(np.hypot(*axis)), 1e-3)
    down = axis / eye_to_mouth
    right = np.array([-down[1], down[0]])
    eye_distance = max(float(np.hypot(*(five[1] - five[0]))), 0.5 * eye_to_mouth)
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    dx, dy = xs - eyes[0], ys - eyes[1]
    return FaceFrame((dx * right[0] + dy * right[1]) / eye_distance, (dx * down[0] + dy * down[1]) / eye_to_mouth, eye_to_mouth)


def working_crop(image: np.ndarray, landmarks5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The face resampled to the working scale, with room down to below the chin.

    Returns:
        (crop, photo -> crop matrix, five landmarks in crop pixels)
    """
    five = np.asarray(landmarks5, dtype=np.float64)
    eyes, mouth = five[:2].mean(axis=0), five[3:].mean(axis=0)
    eye_to_mouth = max(float(np.hypot(*(mouth - eyes))), 1.0)
    scale = WORK_EYE_TO_MOUTH / eye_to_mouth
    centre = (eyes + mouth) / 2
    half = 2.2 * eye_to_mouth
    x1, y1 = int(np.floor(max(0, centre[0] - half))), int(np.floor(max(0, centre[1] - half)))
    x2, y2 = int(np.ceil(min(image.shape[1], centre[0] + half))), int(np.ceil(min(image.shape[0], centre[1] + half)))
    x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
    width, height = max(1, round((x2 - x1) * scale)), max(1, round((y2 - y1) * scale))
    region = image[y1:y2, x1:x2]
    crop = cv2.resize(region, (width, height), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    sx, sy = width / (x2 - x1), height / (y2 - y1)
    matrix = np.array([[sx, 0.0, -sx * x1], [0.0, sy, -sy * y1]])
    return crop, matrix, transform_points(five, matrix)


def reference_skin(frame: FaceFrame) -> np.ndarray:
    """Bool mask of the skin masks never reach: between the eyes and the lower forehead."""
    u, v = frame.u, frame.v
    between_eyes = (np.abs(u) < 0.18) & (v > -0.3) & (v < 0.2)
    forehead = (np.abs(u) < 0.4) & (v > -0.6) & (v < -0.3)
    return between_eyes | forehead


def lower_face(frame: FaceFrame) -> np.ndarray:
    """Bool mask of the lower face, nose to chin, without the lips: a mask covers all of it."""
    u, v = frame.u, frame.v
    region = (np.abs(u) < 0.62) & (v > 0.45) & (v < 1.55) & ((u / 0.62) ** 2 + ((v - 0.95) / 0.75) ** 2 < 1.3)
    lips = (np.abs(u) < 0.4) & (v > 0.85) & (v < 1.15)
    return region & ~lips


def nose_to_chin(frame: FaceFrame) -> np.ndarray:
    """Bool mask of the least any face mask covers: nose, mouth and chin."""
    u, v = frame.u, frame.v
    return (v > 0.45) & ((u / 0.6) ** 2 + ((v - 1.0) / 0.55) ** 2 < 1.0)


def covering_region(frame: FaceFrame) -> np.ndarray:
    """Bool mask of where a face mask can be: from just below the eyes to under the chin, cheek to cheek."""
    u, v = frame.u, frame.v
    return (v > 0.25) & (v < 2.1) & ((u / 1.05) ** 2 + ((v - 1.15) / 1.0) ** 2 < 1.0)


def skin_distance(lab: np.ndarray, reference: np.ndarray, light_and_shade: bool = False) -> np.ndarray:
    """Per pixel, how far from the reference skin (1 = surely not skin); h×w float32.

    With `light_and_shade`, skin far lighter or darker than the reference still
    counts as "maybe skin" when its hue and chroma say so: right for whether a
    face is masked at all, too generous for where a mask's shaded folds are.
    """
    values = lab[reference]
    if values.shape[0] < 8:
        return np.zeros(lab.shape[:2], dtype=np.float32)
    # Hair, brows and eyes that reach into the reference are much darker than the skin: left out.
    values = values[values[:, 0] >= np.percentile(values[:, 0], 75) - HAIR_DARKER]
    centre = np.median(values, axis=0)
    spread = float(np.clip(1.4826 * np.median(np.hypot(*(values[:, 1:] - centre[1:]).T)), *CHROMA_SPREAD_LIMITS))
    chroma = np.hypot(lab[..., 1] - centre[1], lab[..., 2] - centre[2]) / (3.5 * spread)
    reference_chroma = float(np.hypot(*centre[1:]))
    lighter = (lab[..., 0] - centre[0] - LIGHTNESS_TOLERANCE[0]) / (LIGHTNESS_TOLERANCE[1] - LIGHTNESS_TOLERANCE[0]) + 1.0
    dark_from, dark_to = DARKNESS_TOLERANCE if reference_chroma >= GREY_CHROMA else GREY_DARKNESS_TOLERANCE
    darker = (centre[0] - lab[..., 0] - dark_from) / (dark_to - dark_from) + 1.0
    # A pixel of skin hue and chroma is at most "maybe not skin". With `light_and_shade`, in colour photos also
    # when it is much lighter or darker (a smile's lit cheeks, a face looking down into shade), its chroma then
    # judged for its lightness: white, black and grey masks have next to none.
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1]))
    pixel_chroma = np.hypot(lab[..., 1], lab[..., 2])
    skin_hued = (hue > SKIN_HUE_DEGREES[0]) & (hue < SKIN_HUE_DEGREES[1]) & (pixel_chroma > SKIN_LOCUS_MIN_CHROMA * reference_chroma)
    if light_and_shade and reference_chroma >= GREY_CHROMA:
        # The skin's own hue, its chroma in proportion to its lightness: the same skin in more or less light.
        for_lightness = lab[..., 0] / max(float(centre[0]), 1.0)
        own_hue = np.abs((hue - np.degrees(np.arctan2(centre[2], centre[1])) + 180.0) % 360.0 - 180.0) < SKIN_HUE_TOLERANCE
        relit = own_hue & (pixel_chroma > SKIN_LOCUS_MIN_CHROMA * reference_chroma * np.minimum(1.0, for_lightness))
        relit &= pixel_chroma < RELIT_MAX_CHROMA * reference_chroma * np.maximum(1.0, for_lightness)
        skin_hued |= relit
        lighter, darker = (np.where(relit, np.minimum(term, SKIN_LOCUS_DISTANCE), term) for term in (lighter, darker))
    chroma = np.where(skin_hued, np.minimum(chroma, SKIN_LOCUS_DISTANCE), chroma)
    return np.maximum.reduce([chroma, lighter, darker]).astype(np.float32)


def refine_with_grabcut(crop: np.ndarray, distance: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """The covering as a bool mask: GrabCut seeded from the skin distances, kept where a mask can be."""
    region = covering_region(frame)
    core = lower_face(frame)
    seeds = np.full(crop.shape[:2], cv2.GC_PR_BGD, dtype=np.uint8)
    seeds[region & (distance >= NOT_SKIN)] = cv2.GC_PR_FGD
    seeds[core & (distance >= 1.5 * NOT_SKIN)] = cv2.GC_FGD
    seeds[reference_skin(frame) | (frame.v < 0.0)] = cv2.GC_BGD
    seeds[region & (distance < 0.5 * NOT_SKIN)] = cv2.GC_PR_BGD
    found = region & (distance >= NOT_SKIN)
    has_fg = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)).any()
    has_bg = np.isin(seeds, (cv2.GC_BGD, cv2.GC_PR_BGD)).any()
    if has_fg and has_bg and min(crop.shape[:2]) >= 8:
        background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        try:
            cv2.grabCut(np.ascontiguousarray(crop[..., ::-1]), seeds, None, background, foreground, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
            # GrabCut adds the mask's shaded and skin-like parts; the seeds it dropped stay.
            found |= np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)) & region
        except cv2.error:
            pass
    found = cv2.morphologyEx(found.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels = cv2.connectedComponents(found)
    touching = {int(label) for label in np.unique(labels[core & (found > 0)]) if label > 0}
    kept = np.isin(labels, list(touching)) if touching else np.zeros_like(found, dtype=bool)
    return cv2.morphologyEx(kept.astype(np.uint8), cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))) > 0


def mask_coloured(lab: np.ndarray, core: np.ndarray, lightness: bool = True) -> np.ndarray:
    """Bool h×w: the pixels of the mask's own colour, its colour taken from `core` (bool: surely the mask); without
    `lightness`, by chroma alone (a mask's folds and lower rim in shade are its colour in less light)."""
    samples = lab[core]
    median = np.median(samples, axis=0)
    spread = np.maximum(1.4826 * np.median(np.abs(samples - median), axis=0), MASK_COLOUR_MIN_SPREAD)
    channels = slice(0, 3) if lightness else slice(1, 3)
    return np.sqrt((((lab - median) / spread)[..., channels] ** 2).sum(axis=-1)) <= MASK_COLOUR_SPREAD


def connected_to(candidates: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Bool h×w: the parts of `candidates` (bool) that touch `seeds` (bool)."""
    _, labels = cv2.connectedComponents(candidates.astype(np.uint8))
    touching = [int(label) for label in np.unique(labels[seeds & candidates]) if label > 0]
    return np.isin(labels, touching)


def grow_by_mask_colour(lab: np.ndarray, found: np.ndarray, distance: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """The covering grown over the pixels of its own colour that are connected to it and not plainly skin."""
    core = found & lower_face(frame)
    if core.sum() < 8:
        return found
    u, v = frame.u, frame.v
    reach = (np.abs(u) <= GROWTH_REACH[0]) & (v >= GROWTH_REACH[1]) & (v <= GROWTH_REACH[2])
    return connected_to((mask_coloured(lab, core) & (distance >= MAYBE_SKIN) & reach) | found, found)


def only_mask_coloured(lab: np.ndarray, found: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """The covering without what lies, below the mouth, outside both the mask's own chroma (in light or shade) and
    the least a mask covers (`nose_to_chin`): what is not skin beside the chin (a shirt, a collar, hair) is not
    the mask, and a new lower face painted over it came out larger than the head. Above the mouth, the rims and
    ear loops stay, whatever their colour."""
    core = found & lower_face(frame)
    if core.sum() < 8:
        return found
    kept = mask_coloured(lab, core, lightness=False) | nose_to_chin(frame) | (frame.v < ONLY_MASK_COLOUR_FROM)
    return connected_to(found & kept, core)


def find_covering(image: np.ndarray, landmarks5, with_pixels: bool = True) -> Covering:
    """The probability that the face wears a mask, and the covering's pixels when it does.

    Args:
        image: H×W×3 uint8 RGB photo.
        landmarks5: the face's five detector landmarks (eyes, nose, mouth corners) in photo pixels.
        with_pixels: also find the covering's pixels (else only the probability is measured).
    """
    crop, matrix, five = working_crop(image, landmarks5)
    frame = face_frame(crop.shape[:2], five)
    lab = to_lab(cv2.GaussianBlur(crop, (0, 0), 0.8))
    core = lower_face(frame)
    if core.sum() < 8:
        return Covering(0.0, np.zeros(crop.shape[:2], np.float32), matrix, 0.0, 0.0)
    share = float(np.clip(skin_distance(lab, reference_skin(frame), light_and_shade=True)[core], 0.0, 1.0).mean())
    probability = float(1.0 / (1.0 + np.exp(-(share - SHARE_CENTRE) / SHARE_SLOPE)))
    pixels = np.zeros(crop.shape[:2], np.float32)
    covered = 0.0
    if probability >= MASKED_THRESHOLD and with_pixels:
        distance = skin_distance(lab, reference_skin(frame))
        found = grow_by_mask_colour(lab, refine_with_grabcut(crop, distance, frame), distance, frame)
        found = only_mask_coloured(lab, found, frame)
        covered = float(found[core].mean())
        # A face this sure to be masked is covered from the nose to the chin, whatever
        # the colours say (a mask close to the skin's colour, a shadow): the prior shape is added.
        pixels = (found | nose_to_chin(frame)).astype(np.float32)
    return Covering(probability, pixels, matrix, share, covered)


def mask_probability(image: np.ndarray, landmarks5) -> float:
    """Just the probability that the face wears a mask, in [0, 1]."""
    return find_covering(image, landmarks5, with_pixels=False).probability


def covering_in_crop(covering: Covering, matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The covering's pixel mask moved into another crop of the photo (photo -> crop `matrix`), h×w float32."""
    to_crop = compose(matrix, cv2.invertAffineTransform(covering.matrix))
    return cv2.warpAffine(covering.pixels, to_crop, (shape[1], shape[0]), flags=cv2.INTER_LINEAR, borderValue=0.0)
