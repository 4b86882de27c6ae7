"""Closed, half-closed and downcast eyes for a replaced face: the pool's people nearly all have their eyes open.

The replaced face takes the donor's eyes where the donor's layout puts them, so a
closed eye came back open. `lowered_lids` lowers the layout's upper lids until
each eye is as open as the target's (shut when the target's is closed or downcast): the warp then stretches the donor's own
upper lid down over its eye, whose lashes and iris shrink into the dark line
where the lids meet, as on a real closed eye. The warp stays one continuous
map (`warp.unfolded_layout`), so nothing shows twice.
"""

from __future__ import annotations

import numpy as np

from pipeline.modes.replace.landmarks import LEFT_EYE, RIGHT_EYE, eye_openness

UPPER_LID = (1, 2)  # an eye's six points: corner, two upper lid points, corner, two lower lid points
LOWER_LID = (5, 4)  # ... the lower lid points under the upper ones
CLOSED_EYE = 0.2  # dlib reads a shut or downcast eye's lash band as an openness of about 0.1-0.2 (open eyes 0.25-0.4) ...
SHUT_OPENNESS = 0.03  # ... and such an eye gets this opening: the line of the donor's lashes, no iris


def lowered_lids(layout: np.ndarray, target_points: np.ndarray) -> np.ndarray:
    """`layout` with each eye's upper lid lowered to make the eye no more open than the target's."""
    layout = np.asarray(layout, dtype=np.float64).copy()
    target_points = np.asarray(target_points, dtype=np.float64)
    for eye in (LEFT_EYE, RIGHT_EYE):
        points = layout[eye]
        wanted, current = eye_openness(target_points[eye]), eye_openness(points)
        if wanted < CLOSED_EYE:
            wanted = SHUT_OPENNESS
        if current <= wanted:
            continue
        upper, lower = list(UPPER_LID), list(LOWER_LID)
        points[upper] = points[lower] + (wanted / current) * (points[upper] - points[lower])
        layout[eye] = points
    return layout
