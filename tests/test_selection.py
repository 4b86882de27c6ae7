"""Typed face numbers, reading order and the default choice of faces to keep."""

import numpy as np
import pytest

from pipeline.errors import InvalidSelection
from pipeline.selection import choose_main_subjects, parse_face_numbers, reading_order


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1 3", {1, 3}),
        ("1,3", {1, 3}),
        ("1, 3", {1, 3}),
        ("1번 3번", {1, 3}),
        ("1번, 3번", {1, 3}),
        ("2-4", {2, 3, 4}),
        ("all", {1, 2, 3, 4, 5}),
        ("ALL", {1, 2, 3, 4, 5}),
        ("모두", {1, 2, 3, 4, 5}),
        ("none", set()),
        ("없음", set()),
    ],
)
def test_keep_accepts_numbers_as_people_type_them(text, expected):
    assert parse_face_numbers(text, 5) == expected


@pytest.mark.parametrize("text", ["7", "0 1", "hello", "1번 9번", ""])
def test_keep_refuses_numbers_no_face_has(text):
    with pytest.raises(InvalidSelection):
        parse_face_numbers(text, 5)


def test_reading_order_reads_rows_top_to_bottom_then_left_to_right():
    boxes = np.array(
        [
            [300, 12, 350, 62],  # row 1, right (slightly lower)
            [10, 200, 60, 250],  # row 2, left
            [10, 0, 60, 50],  # row 1, left
            [300, 205, 350, 255],  # row 2, right
        ],
        dtype=float,
    )
    assert reading_order(boxes) == [2, 0, 1, 3]


def test_main_subjects_are_the_large_sharp_central_faces():
    boxes = np.array(
        [
            [400, 200, 600, 450],  # large, central: the subject
            [700, 220, 880, 440],  # large, central: second subject
            [50, 300, 90, 350],  # small bystander
            [1200, 200, 1280, 420],  # large but cut by the edge
            [100, 100, 280, 330],  # large but out of focus
        ],
        dtype=float,
    )
    sharpness = [900.0, 800.0, 700.0, 850.0, 60.0]
    assert choose_main_subjects(boxes, sharpness, (1280, 720)) == [0, 1]


def test_a_lone_face_is_a_main_subject():
    assert choose_main_subjects(np.array([[0, 0, 10, 10]], dtype=float), [1.0], (100, 100)) == [0]
