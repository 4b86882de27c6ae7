"""The target's eyes and mouth state on the donor's features: the pool's people nearly all have open eyes.

The replaced face takes the donor's features where the donor's layout puts them,
so a closed or downcast eye came back open, and a straight face got the donor's
open-mouthed grin. `matched_expression` moves the layout's lids and lips:

- the upper lids come down until each eye is as open as the target's (shut when
  the target's is closed or downcast): the warp stretches the donor's own upper
  lid over its eye, whose lashes and iris shrink into the dark line where the
  lids meet, as on a real closed eye;
- the lips close until the mouth is as open as the target's: the teeth shrink
  into the line between them.

Only ever closing: a closed donor eye or mouth warped open would split, showing
skin where the eye or the teeth should be (donor choice matches those states,
`donors.rank_donors`). The warp stays one continuous map (`warp.unfolded_layout`),
so nothing shows twice.
"""

from __future__ import annotations

import numpy as np

from pipeline.face.landmarks import LEFT_EYE, RIGHT_EYE, eye_openness, face_features

UPPER_LID = [1, 2]  # an eye's six points: corner, two upper lid points, corner, two lower lid points
LOWER_LID = [5, 4]  # ... the lower lid points under the upper ones
CLOSED_EYE = 0.2  # dlib reads a shut or downcast eye's lash band as an openness of about 0.1-0.2 (open eyes 0.25-0.4) ...
SHUT_OPENNESS = 0.03  # ... and such an eye gets this opening: the line of the donor's lashes, no iris
UPPER_INNER_LIP, LOWER_INNER_LIP = [61, 62, 63], [67, 66, 65]  # pairs facing each other across the mouth
UPPER_OUTER_LIP, LOWER_OUTER_LIP = [49, 50, 51, 52, 53], [59, 58, 57, 56, 55]


def matched_expression(layout: np.ndarray, target_points: np.ndarray) -> np.ndarray:
    """`layout` with its eyes and mouth no more open than the target's."""
    return closed_lips(lowered_lids(layout, target_points), target_points)


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
        points[UPPER_LID] = points[LOWER_LID] + (wanted / current) * (points[UPPER_LID] - points[LOWER_LID])
        layout[eye] = points
    return layout


def closed_lips(layout: np.ndarray, target_points: np.ndarray) -> np.ndarray:
    """`layout` with its lips brought together (each lip whole) until the mouth is no more open than the target's."""
    layout = np.asarray(layout, dtype=np.float64).copy()
    wanted, current = face_features(target_points).mouth_open, face_features(layout).mouth_open
    if current <= wanted:
        return layout
    upper, lower = layout[UPPER_INNER_LIP], layout[LOWER_INNER_LIP]
    middle = (upper + lower) / 2
    share = wanted / current
    upper_shift = middle + share * (upper - middle) - upper
    lower_shift = middle + share * (lower - middle) - lower
    layout[UPPER_INNER_LIP] += upper_shift
    layout[LOWER_INNER_LIP] += lower_shift
    layout[UPPER_OUTER_LIP] += upper_shift.mean(axis=0)
    layout[LOWER_OUTER_LIP] += lower_shift.mean(axis=0)
    return layout
