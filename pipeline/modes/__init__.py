"""The modes, behind one signature: `apply(image, face, models) -> ModeOutput`.

A mode returns the new pixels for one face as a crop, a soft mask saying where
to use them, and the matrix from photo pixels to crop pixels. `paste.paste_back`
puts every crop back in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ModeOutput:
    crop: np.ndarray  # h×w×3 uint8: new pixels
    mask: np.ndarray  # h×w float32 in [0, 1]: where to use them
    matrix: np.ndarray  # 2×3: photo pixels -> crop pixels


MODE_NAMES = ("replace", "unmask", "blur")
