"""Blur mode: mosaic or Gaussian blur over the whole face, with feathered edges.

It needs no weights, so it always works.
"""

from __future__ import annotations

import numpy as np

from pipeline.face.blur import blur_face
from pipeline.types import Face, FaceReport, ModeOutput


class BlurChanger:
    """Blur mode behind the per-photo signature (`start`): every face is blurred the same way."""

    def __init__(self, image: np.ndarray, style: str):
        self.image = image
        self.style = style
        self.reports: list = []

    def apply(self, face: Face) -> ModeOutput:
        self.reports.append(FaceReport(number=face.number, mode="blur"))
        return blur_face(self.image, face, self.style)


def start(image: np.ndarray, faces, keep, models) -> BlurChanger:
    """Begin blurring one photo's faces."""
    return BlurChanger(image, models.settings.blur_style)


def unavailable_reason(models) -> str | None:
    """Blur needs no weights: it always works."""
    return None
