"""Blurring one face: mosaic or Gaussian over the whole face, with feathered edges (blur mode, and every mode's fallback)."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.regions import face_bounds, face_mask, face_scale
from pipeline.types import Face, ModeOutput

MOSAIC_BLOCKS = 8  # mosaic cells across the face
GAUSSIAN_SIGMA = 0.12  # Gaussian sigma, as a fraction of the face size
FEATHER = 0.12  # soft edge width, as a fraction of the face size


def blur_face(image: np.ndarray, face: Face, style: str = "mosaic") -> ModeOutput:
    """Hide one face.

    Args:
        image: H×W×3 uint8 photo.
        face: the face to hide.
        style: `mosaic` or `gaussian`.
    """
    size = face_scale(face)
    feather = max(2.0, FEATHER * size)
    bounds = face_bounds(face, (image.shape[1], image.shape[0]), margin=feather)
    x1, y1, x2, y2 = bounds
    region = image[y1:y2, x1:x2]
    if style == "gaussian":
        crop = cv2.GaussianBlur(region, (0, 0), sigmaX=max(1.0, GAUSSIAN_SIGMA * size), borderType=cv2.BORDER_REPLICATE)
    else:
        crop = pixelate(region, cell=max(2, round(size / MOSAIC_BLOCKS)))
    matrix = np.array([[1.0, 0.0, -x1], [0.0, 1.0, -y1]])
    return ModeOutput(crop=crop, mask=face_mask(face, bounds, feather), matrix=matrix)


def pixelate(region: np.ndarray, cell: int) -> np.ndarray:
    """Average the region over square cells of `cell` pixels."""
    height, width = region.shape[:2]
    small = cv2.resize(region, (max(1, round(width / cell)), max(1, round(height / cell))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
