"""Make donor pixels look as if they were taken with the target's camera and light (plain numpy/OpenCV).

- `transfer_colour`: LAB chroma scaled to the mean of the target's visible skin; lightness
  follows the target's low-frequency shading (the ratio of blurred lightness), so
  the light's direction and falloff are the target's, the fine detail the donor's.
- `edge_matched_light`: along the paste's edge, the target's own low-frequency colour, fading out inside.
- `darkened_eyes`: a new face's irises as dark against its skin as the person's own, and of their colour.
- `match_sharpness`: the donor is brought down to the target's resolution and blur,
  and gets the target's grain, so a sharp face never sits in a soft photo.
"""

from __future__ import annotations

import cv2
import numpy as np

LIGHT_SIGMA = 0.2  # low-frequency light, Gaussian sigma as a fraction of the face size
LIGHTNESS_STD_LIMITS = (0.7, 1.4)  # how much the donor's lightness contrast may be squeezed or stretched
CHROMA_GAIN_LIMITS = (0.0, 2.0)  # how much the donor's chroma may be scaled (down to none: a black-and-white photo has no colour)
MIN_CHROMA = 2.0  # a donor's skin with less mean chroma (LAB a or b) than this is shifted, not scaled
SKIN_SPREAD_LIMITS = (2.5, 5.0)  # robust chroma spread of the reference skin, LAB units
SKIN_DISTANCE = (2.0, 3.5)  # chroma distance in spreads: fully skin below the first, not skin above the second
IRIS_SHARE = 0.4  # the darkest share of an eye's pixels taken for its iris and pupil (`iris_colour`)
MIN_EYE_PIXELS = 12  # fewer eye (or skin) pixels than this tell nothing of an eye's darkness
MAX_EYE_DARKENING = 1.6  # a new face's eyes are made at most this much darker against its skin (`darkened_eyes`)
BLUR_STEPS = (0.0, 0.5, 0.8, 1.2, 1.7, 2.4)  # candidate Gaussian sigmas, in target pixels
EDGE_LIGHT_DEPTH = 0.12  # `edge_matched_light` fades out this far inside the paste's edge (fraction of the face size)


def masked_stats(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and standard deviation per channel of h×w×C values under h×w weights."""
    weights = weights.astype(np.float64)
    total = max(weights.sum(), 1e-6)
    mean = (values * weights[..., None]).reshape(-1, values.shape[-1]).sum(axis=0) / total
    variance = (((values - mean) ** 2) * weights[..., None]).reshape(-1, values.shape[-1]).sum(axis=0) / total
    return mean, np.sqrt(variance)


def masked_blur(values: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised Gaussian blur of h×w values that only averages pixels with weight (no bleeding from outside)."""
    weights = weights.astype(np.float32)
    numerator = cv2.GaussianBlur(values.astype(np.float32) * weights, (0, 0), sigma)
    denominator = cv2.GaussianBlur(weights, (0, 0), sigma)
    return numerator / np.maximum(denominator, 1e-3)


def to_lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def from_lab(lab: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def transfer_colour(
    donor: np.ndarray, target: np.ndarray, donor_skin: np.ndarray, target_skin: np.ndarray, face_size: float
) -> np.ndarray:
    """The donor recoloured and relit like the target.

    Args:
        donor: h×w×3 uint8 RGB donor, already warped onto the target.
        target: h×w×3 uint8 RGB target crop.
        donor_skin: h×w weights of the donor's skin (where its statistics come from).
        target_skin: h×w weights of the target's visible skin.
        face_size: the face's size in pixels of this crop (sets the light's scale).
    """
    donor_lab, target_lab = to_lab(donor), to_lab(target)
    donor_mean, donor_std = masked_stats(donor_lab, donor_skin)
    target_mean, target_std = masked_stats(target_lab, target_skin)
    out = donor_lab.copy()
    for channel in (1, 2):
        # Chroma is scaled about grey, not about the skin's mean: shifted, a warm donor's grey eyes and white teeth
        # went the opposite way on a paler target (blue irises).
        gain = target_mean[channel] / donor_mean[channel] if abs(donor_mean[channel]) >= MIN_CHROMA else 1.0
        gain = float(np.clip(gain, *CHROMA_GAIN_LIMITS))
        out[..., channel] = donor_lab[..., channel] * gain + (target_mean[channel] - gain * donor_mean[channel])
    ratio = np.clip(target_std[0] / max(donor_std[0], 1e-3), *LIGHTNESS_STD_LIMITS)
    lightness = (donor_lab[..., 0] - donor_mean[0]) * ratio + target_mean[0]
    # The target's light: its skin's low-frequency lightness relative to its mean. Only the
    # target's skin is measured, so a donor's dark beard is never "corrected" towards grey.
    sigma = max(1.0, LIGHT_SIGMA * face_size)
    shading = masked_blur(target_lab[..., 0], target_skin, sigma) / max(target_mean[0], 1.0)
    out[..., 0] = np.clip(lightness * np.clip(shading, 0.5, 1.6), 0, 100)
    return from_lab(out)


def edge_matched_light(
    new: np.ndarray, target: np.ndarray, mask: np.ndarray, features: np.ndarray, face_size: float, beside: np.ndarray | None = None
) -> np.ndarray:
    """`new` (h×w×3 uint8) carried to the target's own low-frequency colour along the edge of `mask` (h×w, where it is
    pasted), fading to nothing `EDGE_LIGHT_DEPTH` of the face size inside, and little over `features` (h×w weights);
    not along an edge `beside` (h×w weights, or None) what stays in front of the face, a face mask: that step is the mask's.

    The light transfer follows the target's shading at the scale of the whole face: a shadow under the hair or at a
    cheek's edge stayed lit on the new face, and its edge showed as a step (a gradient-domain blend's job, done
    where the step is). Beside a face mask the person's own skin under the eyes came back, and with it too much of
    who they are (masked faces failed the anonymity check).
    """
    depth = max(2.0, EDGE_LIGHT_DEPTH * face_size)
    inner = (mask >= 0.5) if beside is None else (mask >= 0.5) | (beside > 0.5)
    inner = inner.astype(np.uint8)
    inward = cv2.distanceTransform(inner, cv2.DIST_L2, 3)
    features = cv2.GaussianBlur(np.clip(features, 0.0, 1.0).astype(np.float32), (0, 0), depth / 2)
    fade = np.clip(1.0 - inward / depth, 0.0, 1.0) * (mask > 0) * (1.0 - features)
    ring = ((mask > 0.1) & (inward < 2 * depth)).astype(np.float32)
    difference = target.astype(np.float32) - new.astype(np.float32)
    offset = np.stack([masked_blur(difference[..., c], ring, depth / 2) for c in range(3)], axis=-1)
    return np.clip(new + fade[..., None] * offset, 0, 255).astype(np.uint8)


def iris_colour(lab: np.ndarray, eyes: np.ndarray, skin: np.ndarray) -> tuple[float, float, np.ndarray] | None:
    """(skin lightness, how much darker than it the irises are, the irises' median LAB a and b), LAB: the median of
    the eye band's skin (`skin`, h×w weights) and of the darkest `IRIS_SHARE` of the eyes' pixels (`eyes`, h×w
    weights); None when either has too few pixels to tell."""
    inside, around = lab[eyes > 0.5], lab[..., 0][skin > 0.5]
    if len(inside) < MIN_EYE_PIXELS or around.size < MIN_EYE_PIXELS:
        return None
    iris = inside[inside[:, 0] <= np.percentile(inside[:, 0], 100 * IRIS_SHARE)]
    skin_lightness = float(np.median(around))
    return skin_lightness, skin_lightness - float(np.median(iris[:, 0])), np.median(iris[:, 1:], axis=0)


def darkened_eyes(
    new: np.ndarray, target: np.ndarray, new_eyes: np.ndarray, target_eyes: np.ndarray, new_skin: np.ndarray,
    target_skin: np.ndarray,
) -> np.ndarray:
    """`new` (h×w×3 uint8 RGB, recoloured) with irises as much darker than its skin as the person's own, and of
    their colour.

    The lightness transfer squeezes the donor's contrast to the person's skin and lifts it to the person's
    lightness, so a dark iris came out grey, and a donor's light iris stayed light: on a dark-eyed face the new
    eyes read as pale blue, grey or green, which no photo of that person would show (measured on Grace Hopper:
    her irises 61 LAB L units darker than her skin, the new ones 39). Under `new_eyes` (soft h×w weights), every
    pixel darker than the new skin is darkened, the more the darker it is, towards the person's own iris darkness
    (measured under `target_eyes`, against `new_skin` and `target_skin`: `iris_colour`), by at most
    `MAX_EYE_DARKENING`, and its chroma is moved to the person's irises' as far as it is iris-dark. Never
    lightened: a small or soft face's eyes measure lighter than they are, and then nothing changes.
    """
    new_lab = to_lab(new)
    measured_new = iris_colour(new_lab, new_eyes, new_skin)
    measured_target = iris_colour(to_lab(target), target_eyes, target_skin)
    if measured_new is None or measured_target is None or measured_new[1] <= 1.0:
        return new
    gain = float(np.clip(measured_target[1] / measured_new[1], 1.0, MAX_EYE_DARKENING))
    if gain <= 1.01:
        return new
    below = np.maximum(measured_new[0] - new_lab[..., 0], 0.0)
    iris = np.clip(below / measured_new[1], 0.0, 1.0) * new_eyes  # 1 on the iris and darker (lashes, pupil)
    # Weighted by iris-darkness too: eye whites in shade are a little darker than the skin, and darkened as much they
    # closed the eyes to slits.
    new_lab[..., 0] = np.clip(new_lab[..., 0] - (gain - 1.0) * below * iris, 0, 100)
    new_lab[..., 1:] += iris[..., None] * (measured_target[2] - new_lab[..., 1:])
    return from_lab(new_lab)


def detail_level(gray: np.ndarray, weights: np.ndarray) -> float:
    """How crisp the face's edges are: the 90th percentile of fine detail (the image minus a blur of 1.5 px) where weights > 0.5.

    Only the finest band, so a face's own structure (nose shading, thick brows)
    does not read as sharpness. The high percentile is set by the edges every face
    has (eyelids, lips, brows) rather than by skin texture: measured by the median,
    a donor with lined skin on a smooth-skinned target was blurred to mush, and the
    blur chosen changed with the donor rather than with the photo.
    """
    values = np.abs(gray - cv2.GaussianBlur(gray, (0, 0), 1.5))[weights > 0.5]
    return float(np.percentile(values, 90)) if values.size else 0.0


def noise_level(gray: np.ndarray, weights: np.ndarray) -> float:
    """Robust standard deviation of the fine residual (image minus a slight blur) under the weights."""
    residual = gray - cv2.GaussianBlur(gray, (0, 0), 1.0)
    values = np.abs(residual[weights > 0.5])
    return float(1.4826 * np.median(values)) if values.size else 0.0


def match_sharpness(
    donor: np.ndarray, target: np.ndarray, weights: np.ndarray, work_scale: float, seed: int = 0
) -> np.ndarray:
    """The donor with the target's resolution, blur and grain.

    Args:
        donor: h×w×3 uint8, already warped and recoloured, in work-crop pixels.
        target: h×w×3 uint8 target crop in the same pixels.
        weights: h×w weights where sharpness is compared (the face region, or the eye band).
        work_scale: work-crop pixels per photo pixel (above 1 for small faces that were upscaled).
        seed: noise seed, so results are reproducible.
    """
    height, width = donor.shape[:2]
    if work_scale > 1.0:
        small = (max(1, round(width / work_scale)), max(1, round(height / work_scale)))
        donor = cv2.resize(cv2.resize(donor, small, interpolation=cv2.INTER_AREA), (width, height), interpolation=cv2.INTER_LINEAR)
    target_gray = cv2.cvtColor(target, cv2.COLOR_RGB2GRAY).astype(np.float32)
    target_detail = detail_level(target_gray, weights)
    pixel = max(1.0, work_scale)
    best = donor
    for sigma in BLUR_STEPS:
        candidate = donor if sigma == 0 else cv2.GaussianBlur(donor, (0, 0), sigma * pixel)
        best = candidate
        if detail_level(cv2.cvtColor(candidate, cv2.COLOR_RGB2GRAY).astype(np.float32), weights) <= 1.05 * target_detail:
            break
    target_noise = noise_level(target_gray, weights)
    donor_noise = noise_level(cv2.cvtColor(best, cv2.COLOR_RGB2GRAY).astype(np.float32), weights)
    extra = np.sqrt(max(0.0, target_noise**2 - donor_noise**2))
    if extra > 0.5:
        grain = np.random.default_rng(seed).normal(0.0, extra, (height // max(1, round(pixel)) + 1, width // max(1, round(pixel)) + 1))
        grain = cv2.resize(grain.astype(np.float32), (width, height), interpolation=cv2.INTER_NEAREST)
        best = np.clip(best.astype(np.float32) + grain[..., None], 0, 255).astype(np.uint8)
    return best


def skin_visibility(target: np.ndarray, reference: np.ndarray, allowed: np.ndarray, face_size: float) -> np.ndarray:
    """Float mask in [0, 1]: 1 where the target shows its own skin, 0 where something else covers the face.

    A pixel counts as skin when its chroma (LAB a, b) is close to the chroma of
    the reference region (the band between brows and nose, rarely covered);
    lightness is ignored so shadows are not mistaken for occluders. `allowed`
    (eyes, brows, lips) is always visible. Crude: a hand of the same skin colour
    is not found.
    """
    lab = to_lab(target)
    chroma = lab[..., 1:]
    ref = chroma[reference > 0.5]
    if ref.shape[0] < 8:
        return np.ones(target.shape[:2], dtype=np.float32)
    centre = np.median(ref, axis=0)
    spread = float(np.clip(1.4826 * np.median(np.hypot(*(ref - centre).T)), *SKIN_SPREAD_LIMITS))
    distance = np.hypot(*(chroma - centre).transpose(2, 0, 1)) / spread
    visible = np.clip((SKIN_DISTANCE[1] - distance) / (SKIN_DISTANCE[1] - SKIN_DISTANCE[0]), 0.0, 1.0).astype(np.float32)
    # Occluders are blobs, not single pixels: clean up, then soften.
    radius = max(1, int(round(0.03 * face_size)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    visible = cv2.morphologyEx(visible, cv2.MORPH_CLOSE, kernel)
    visible = np.maximum(visible, allowed.astype(np.float32))
    return cv2.GaussianBlur(visible, (0, 0), max(1.0, 0.04 * face_size))
