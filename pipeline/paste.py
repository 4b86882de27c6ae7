"""Paste-back: the one place where a mode's crop goes back into the photo."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.types import ModeOutput


def blend(base: np.ndarray, new: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`new` over `base` (h×w×3) where the h×w soft `mask` says, as uint8: how a mode's crop will look pasted."""
    alpha = mask[..., None]
    return np.round(base * (1 - alpha) + new * alpha).astype(np.uint8)


def paste_back(image: np.ndarray, output: ModeOutput, protect: np.ndarray | None = None) -> None:
    """Blend a mode's crop into the photo in place, touching only pixels where its mask is above 0.

    Args:
        image: H×W×3 uint8 photo, modified in place.
        output: the crop, its mask and the photo→crop matrix.
        protect: optional H×W bool array of pixels that must stay as they are (kept faces).
    """
    height, width = image.shape[:2]
    inverse = cv2.invertAffineTransform(output.matrix)
    crop_h, crop_w = output.mask.shape
    corners = cv2.transform(np.array([[[0, 0], [crop_w, 0], [0, crop_h], [crop_w, crop_h]]], dtype=np.float64), inverse)[0]
    x1, y1 = np.clip(np.floor(corners.min(axis=0)).astype(int), 0, [width, height])
    x2, y2 = np.clip(np.ceil(corners.max(axis=0)).astype(int), 0, [width, height])
    if x2 <= x1 or y2 <= y1:
        return
    to_region = inverse.copy()
    to_region[:, 2] -= (x1, y1)
    size = (int(x2 - x1), int(y2 - y1))
    pixels = cv2.warpAffine(output.crop, to_region, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = cv2.warpAffine(output.mask, to_region, size, flags=cv2.INTER_LINEAR, borderValue=0.0)
    if protect is not None:
        mask[protect[y1:y2, x1:x2]] = 0.0
    region = image[y1:y2, x1:x2]
    changed = mask > 0
    alpha = mask[changed][:, None]
    region[changed] = np.round(region[changed] * (1 - alpha) + pixels[changed] * alpha).astype(np.uint8)
