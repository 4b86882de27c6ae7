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
from typing import Protocol

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

    def describe(self) -> str:
        """One line for people: the face, what was done to it, and why."""
        done = {"replace": "replaced", "blur": "blurred", "unmask": "unmasked", "none": "left as it was"}.get(self.mode, self.mode)
        if self.donor:
            done += f" with {self.donor}"
        why = [self.reason] if self.reason else []
        if self.mode == "replace" and self.distance is not None:
            why.append(f"dlib distance {self.distance:.2f} from the original")
        return f"face {self.number}: {done}" + (f": {'; '.join(why)}" if why else "")


class FaceChanger(Protocol):
    reports: list[FaceReport]

    def apply(self, face: Face) -> ModeOutput: ...


MODE_NAMES = ("replace", "unmask", "blur")
