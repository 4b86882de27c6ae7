"""What every detector backend returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detections:
    """N faces: corner boxes N×4, scores N, five landmarks N×5×2, in pixels.

    Landmark order: left eye, right eye, nose, left mouth corner, right mouth corner
    (left and right as seen in the photo).
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def scaled(self, factor: float) -> "Detections":
        return Detections(self.boxes * factor, self.scores, self.landmarks * factor)

    @classmethod
    def concatenate(cls, parts: list["Detections"]) -> "Detections":
        return cls(
            np.concatenate([part.boxes for part in parts]).reshape(-1, 4),
            np.concatenate([part.scores for part in parts]),
            np.concatenate([part.landmarks for part in parts]).reshape(-1, 5, 2),
        )

    def subset(self, indices: np.ndarray) -> "Detections":
        return Detections(self.boxes[indices], self.scores[indices], self.landmarks[indices])
