"""The modes, behind one signature.

A mode is started once per photo, `start(image, faces, keep, models) -> FaceChanger`,
and the changer's `apply(face) -> ModeOutput` returns the new pixels for one face
as a crop, a soft mask saying where to use them, and the matrix from photo
pixels to crop pixels. `paste.paste_back` puts every crop back in one place.
Per-photo state (replace mode's donors already used, the kept faces' identities)
lives in the changer; what happened to each face is in its `reports`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from pipeline.types import Face


@dataclass(frozen=True)
class ModeOutput:
    crop: np.ndarray  # h×w×3 uint8: new pixels
    mask: np.ndarray  # h×w float32 in [0, 1]: where to use them
    matrix: np.ndarray  # 2×3: photo pixels -> crop pixels


@dataclass(frozen=True)
class FaceReport:
    """What a mode did to one face, for the worker and the bot to surface.

    `mode` is the mode actually applied (replace falls back to `blur` for faces it
    cannot change safely; `reason` says why). `passed` is the anonymity check:
    True or False when one ran, None when none applies (blur).
    """

    number: int
    mode: str
    passed: bool | None = None
    distance: float | None = None  # identity distance from the original face
    kept_distance: float | None = None  # identity distance to the nearest kept face
    donor: str | None = None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        rounded = lambda v: None if v is None or v == float("inf") else round(float(v), 3)  # noqa: E731
        return {
            "number": self.number, "mode": self.mode, "passed": self.passed, "distance": rounded(self.distance),
            "kept_distance": rounded(self.kept_distance), "donor": self.donor, "reason": self.reason,
        }


class FaceChanger(Protocol):
    reports: list[FaceReport]

    def apply(self, face: Face) -> ModeOutput: ...


MODE_NAMES = ("replace", "unmask", "blur")
