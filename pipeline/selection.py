"""Which faces to keep: the default choice of main subjects, and typed numbers.

Numbering is in reading order: faces are grouped into rows from top to bottom,
and each row is read from left to right.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from pipeline.errors import InvalidSelection
from pipeline.types import Face

ALL_WORDS = {"all", "모두", "전부", "전체", "다"}
NONE_WORDS = {"none", "없음", "없어", "안함", "0"}
MAIN_SUBJECT_MIN_HEIGHT = 0.55  # a main subject is at least this fraction of the largest face's height
MAIN_SUBJECT_MIN_SHARPNESS = 0.3  # ... and at least this fraction of the sharpest face's sharpness
MAIN_SUBJECT_EDGE_MARGIN = 0.04  # ... and its centre is not within this fraction of the photo's edge


def reading_order(boxes: np.ndarray) -> list[int]:
    """Indices of N×4 boxes in reading order: rows top to bottom, each row left to right."""
    if len(boxes) == 0:
        return []
    centers_y = (boxes[:, 1] + boxes[:, 3]) / 2
    heights = boxes[:, 3] - boxes[:, 1]
    remaining = list(np.argsort(centers_y, kind="stable"))
    order: list[int] = []
    while remaining:
        first = remaining[0]
        row = [i for i in remaining if centers_y[i] - centers_y[first] <= heights[first] / 2]
        order += sorted(row, key=lambda i: (boxes[i, 0] + boxes[i, 2]) / 2)
        remaining = [i for i in remaining if i not in row]
    return [int(i) for i in order]


def choose_main_subjects(
    boxes: np.ndarray, sharpness: Sequence[float], image_size: tuple[int, int]
) -> list[int]:
    """Indices of the faces a user most likely wants to keep: large, in focus, not at the edge.

    Args:
        boxes: N×4 face boxes.
        sharpness: a focus measure per face (higher is sharper).
        image_size: (width, height) of the photo.
    """
    if len(boxes) == 0:
        return []
    width, height = image_size
    heights = boxes[:, 3] - boxes[:, 1]
    sharpness = np.asarray(sharpness, dtype=np.float64)
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    margin_x, margin_y = width * MAIN_SUBJECT_EDGE_MARGIN, height * MAIN_SUBJECT_EDGE_MARGIN
    largest = int(np.argmax(heights))
    chosen = []
    for i in range(len(boxes)):
        big = heights[i] >= MAIN_SUBJECT_MIN_HEIGHT * heights.max()
        sharp = sharpness[i] >= MAIN_SUBJECT_MIN_SHARPNESS * sharpness.max()
        inside = margin_x <= centers[i, 0] <= width - margin_x and margin_y <= centers[i, 1] <= height - margin_y
        if i == largest or (big and sharp and inside):
            chosen.append(i)
    return chosen


def parse_face_numbers(text: str, face_count: int) -> set[int]:
    """Face numbers from what a user typed: `1 3`, `1,3`, `1번 3번`, `2-4`, `all`, `none`, `모두`, `없음`.

    Raises:
        InvalidSelection: nothing readable, or a number that no face has.
    """
    cleaned = text.strip().lower()
    if cleaned in ALL_WORDS:
        return set(range(1, face_count + 1))
    if cleaned in NONE_WORDS:
        return set()
    tokens = [token for token in re.split(r"[\s,;/]+|번|and|및|그리고", cleaned) if token]
    if not tokens:
        raise InvalidSelection("no face numbers given")
    numbers: set[int] = set()
    for token in tokens:
        match = re.fullmatch(r"#?(\d{1,4})(?:\s*[-~]\s*(\d{1,4}))?", token)
        if not match:
            raise InvalidSelection(f"{token!r} is not a face number")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        numbers.update(range(min(first, last), max(first, last) + 1))
    wrong = sorted(n for n in numbers if not 1 <= n <= face_count)
    if wrong:
        raise InvalidSelection(f"there is no face {wrong[0]}; the faces are numbered 1 to {face_count}")
    return numbers


def default_keep_for_mode(faces: Sequence[Face], mode: str, main_subjects: Sequence[int]) -> tuple[int, ...]:
    """The faces to pre-select (keep untouched) for a mode; the selection means "leave alone" in every mode.

    Blur and replace keep the main subjects. Unmask changes every masked face,
    so it keeps exactly the faces without a mask (a face never measured counts
    as unmasked).

    Args:
        faces: the photo's faces, with `mask` probabilities from `find_faces`.
        mode: `blur`, `replace` or `unmask`.
        main_subjects: numbers of the main subjects (`Analysis.default_keep`).
    """
    if mode == "unmask":
        return tuple(sorted(face.number for face in faces if not face.wears_mask))
    return tuple(sorted(main_subjects))
