"""New face pixels finished in the photo's own pixels: the work crop brought back to the photo's size, then the
person's own detail and the photo's grain (plain numpy and OpenCV).

A donor is resampled twice on its way into a photo (into the work crop, then
back), so it comes out softer than the photo's own faces, or crisper than a
soft one. Both replace and unmask end here, measured against the person's own
face in the photo itself rather than in the work crop.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.face.crop import PreparedFace

DETAIL_STEPS = (-1.6, -1.2, -0.8, -0.5, 0.0, 0.5, 1.0, 1.5)  # tried: below 0 a Gaussian blur of that sigma, else an unsharp amount
TEXTURE_SIGMA = 0.6  # the added texture's grain size (Gaussian sigma, photo pixels): pores, not single-pixel noise
TEXTURE_LIMIT = 5.0  # at most this much texture is added (standard deviation, grey levels)
NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)  # Immerkær's noise estimator


def photo_region(image: np.ndarray, prepared: PreparedFace) -> tuple[np.ndarray, np.ndarray]:
    """The photo's own pixels under a work crop, and the photo -> that region's matrix.

    The work crop is axis-aligned and only scaled (`crop.prepare_face`), so the
    region is a box of the photo (`PreparedFace.photo_box`).
    """
    x, y, width, height = prepared.photo_box()
    x1, y1 = int(round(x)), int(round(y))
    base = image[y1 : y1 + int(round(height)), x1 : x1 + int(round(width))]
    return base, np.array([[1.0, 0.0, -x1], [0.0, 1.0, -y1]])


def in_photo_pixels(image: np.ndarray, prepared: PreparedFace, new: np.ndarray, *layers: np.ndarray):
    """A work crop's new pixels (and h×w float layers over it) brought back to the photo's pixels by a resize;
    a black-and-white photo's new pixels stay grey.

    Returns:
        (the photo's own pixels there, photo -> that region's matrix, the new pixels there, the layers there)
    """
    base, matrix = photo_region(image, prepared)
    size = (base.shape[1], base.shape[0])
    shrink = cv2.INTER_AREA if prepared.scale > 1 else cv2.INTER_LINEAR
    new = cv2.resize(new, size, interpolation=shrink)
    if np.ptp(base.astype(np.int16), axis=2).max() <= 1:
        new = cv2.cvtColor(cv2.cvtColor(new, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    return base, matrix, new, [cv2.resize(layer, size, interpolation=shrink) for layer in layers]


def matched_detail(
    new: np.ndarray, base: np.ndarray, mask: np.ndarray, upper: np.ndarray, seed: int, inside: np.ndarray | None = None
) -> np.ndarray:
    """`new` blurred or sharpened (`DETAIL_STEPS`), with the photo's grain, so that its fine detail under the mask
    (mean |Laplacian|; or under `inside`, bool) comes up to that of the person's own face (`upper`, bool: the
    upper face for a new lower face, the same pixels for a whole new face) and never beyond it: a real face's lower
    half is about as crisp as its upper half, and a donor resampled twice is softer than a photo's own faces, or
    crisper than a soft one.

    The crispest step still no crisper than the person's own face is taken, and skin texture makes up the rest: the
    nearest step overshot by up to a third on small faces, which then looked etched into the photo.
    """
    inside = mask >= 0.5 if inside is None else inside
    if upper.sum() < 16 or inside.sum() < 16:
        return with_photo_grain(new, base, mask, seed)
    wanted = max(laplacian_level(base, upper), 1e-3)
    soft = cv2.GaussianBlur(new, (0, 0), 1.0).astype(np.float32)
    best = None
    for step in DETAIL_STEPS:  # from the softest to the crispest
        if step < 0:
            candidate = cv2.GaussianBlur(new, (0, 0), -step)
        else:
            candidate = np.clip(np.round(new + step * (new.astype(np.float32) - soft)), 0, 255).astype(np.uint8)
        candidate = with_photo_grain(candidate, base, mask, seed)
        if best is not None and laplacian_level(candidate, inside) > wanted:
            break
        best = candidate
    level = laplacian_level(best, inside)
    return with_skin_texture(best, inside, wanted, level, seed) if level < wanted else best


def with_skin_texture(new: np.ndarray, inside: np.ndarray, wanted: float, level: float, seed: int) -> np.ndarray:
    """`new` with fine random texture (pores, grain) added until its mean |Laplacian| under `inside` reaches `wanted`.

    A donor far softer than the photo (a pool crop upscaled onto a large face)
    cannot be sharpened that far without halos; the missing detail is added as
    texture, at most `TEXTURE_LIMIT` grey levels, the same on every channel (a
    grey photo stays grey).
    """
    texture = cv2.GaussianBlur(np.random.default_rng(seed + 1).normal(0.0, 1.0, new.shape[:2]).astype(np.float32), (0, 0), TEXTURE_SIGMA)
    texture /= max(float(texture.std()), 1e-6)
    unit = max(float(np.abs(cv2.Laplacian(texture, cv2.CV_32F))[inside].mean()), 1e-6)
    # Independent detail adds roughly in quadrature.
    amplitude = min(TEXTURE_LIMIT, np.sqrt(wanted**2 - level**2) / unit)
    return np.clip(np.round(new.astype(np.float32) + amplitude * texture[..., None]), 0, 255).astype(np.uint8)


def laplacian_level(image: np.ndarray, where: np.ndarray) -> float:
    """Mean |Laplacian| of the grey image under a bool mask: how much fine detail (edges, texture, grain) it has."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(gray, cv2.CV_32F))[where].mean())


def photo_noise(gray: np.ndarray, where: np.ndarray) -> float:
    """The standard deviation of a photo's fine noise under a bool mask (Immerkær's estimator, on the flatter half
    of the pixels so edges and texture do not count as noise)."""
    response = np.abs(cv2.filter2D(gray, -1, NOISE_KERNEL))
    gradient = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    values = gradient[where]
    if values.size < 16:
        return 0.0
    flat = where & (gradient <= np.median(values))
    return float(np.sqrt(np.pi / 2) * response[flat].mean() / 6)


def with_photo_grain(new: np.ndarray, base: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
    """`new` with as much fine noise added as the photo around it has more than `new` has under the mask."""
    around = mask <= 0.02
    inside = mask >= 0.5
    wanted = photo_noise(cv2.cvtColor(base, cv2.COLOR_RGB2GRAY).astype(np.float32), around)
    present = photo_noise(cv2.cvtColor(new, cv2.COLOR_RGB2GRAY).astype(np.float32), inside)
    extra = np.sqrt(max(0.0, wanted**2 - present**2))
    if extra < 0.5:
        return new
    grain = np.random.default_rng(seed).normal(0.0, extra, new.shape[:2]).astype(np.float32)
    return np.clip(np.round(new.astype(np.float32) + grain[..., None]), 0, 255).astype(np.uint8)
