"""The numbered contact sheet (pipeline.sheet): limits, layout and labels."""

from __future__ import annotations

import io
import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.sheet import (
    CHANGE_RGB,
    KEEP_RGB,
    MAX_SHEET_BYTES,
    MAX_SIDES_SUM_PX,
    MIN_LABEL_TEXT_PX,
    THUMB_PX,
    WORK_SIDE_PX,
    layout_sheet,
    place_labels,
    plan_photo_labels,
    render_contact_sheet,
    render_thumbnail,
    thumbnail_box,
)
from pipeline.types import Face

DATA = Path(__file__).parent / "data"
NO_LANDMARKS = ((0.0, 0.0),) * 5


def make_face(number: int, box) -> Face:
    return Face(number, tuple(float(v) for v in box), 0.9, NO_LANDMARKS)


def grid_faces(count: int, width: int, height: int) -> list[Face]:
    """`count` square faces spread over a width × height photo in reading order."""
    columns = int(np.ceil(np.sqrt(count * width / height)))
    rows = int(np.ceil(count / columns))
    side = min(width / columns, height / rows) * 0.7
    faces = []
    for i in range(count):
        x, y = (i % columns) * width / columns, (i // columns) * height / rows
        faces.append(make_face(i + 1, (x, y, x + side, y + side)))
    return faces


def crowd_faces() -> list[Face]:
    truth = json.loads((DATA / "ground_truth.json").read_text())
    boxes = truth["kagglemask_maksssksksss52.jpg"]["boxes"]
    return [make_face(i + 1, b["box"]) for i, b in enumerate(boxes)]


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG"
        return np.asarray(img.convert("RGB"))


def noise_photo(width: int, height: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "width, height, face_count",
    [
        pytest.param(640, 480, 1, id="1-face"),
        pytest.param(400, 225, 51, id="51-faces-small-photo"),
        pytest.param(1280, 720, 200, id="200-faces"),
        pytest.param(720, 1280, 200, id="200-faces-portrait"),
        pytest.param(320, 240, 2, id="320px-photo"),
        pytest.param(8000, 2000, 3, id="8000px-photo"),
    ],
)
def test_sheet_is_a_jpeg_within_telegram_limits(width, height, face_count):
    # Noise is the worst case for JPEG size.
    faces = grid_faces(face_count, width, height)
    data = render_contact_sheet(noise_photo(width, height), faces, {1})

    sheet = decode(data)

    assert len(data) <= MAX_SHEET_BYTES
    assert sheet.shape[0] + sheet.shape[1] <= MAX_SIDES_SUM_PX


def test_sheet_without_faces_is_the_downscaled_photo():
    photo = np.zeros((1440, 2560, 3), np.uint8)
    photo[:, 1280:] = 200

    sheet = decode(render_contact_sheet(photo, []))

    assert sheet.shape == (720, 1280, 3)
    assert sheet[360, 300].max() < 10 and sheet[360, 1000].min() > 190


def test_small_photo_is_scaled_up_to_the_working_size():
    sheet = decode(render_contact_sheet(np.full((240, 320, 3), 128, np.uint8), []))

    assert max(sheet.shape[:2]) == WORK_SIDE_PX


@pytest.mark.parametrize("tile_count", [1, 7, 51, 200, 1000])
def test_layout_has_one_tile_per_face_inside_the_sheet_and_apart(tile_count):
    layout = layout_sheet(1280, 720, tile_count)
    tiles = [(x, y, x + layout.tile_px, y + layout.tile_px) for x, y in layout.tile_origins]

    assert len(tiles) == tile_count
    assert layout.width + layout.height <= MAX_SIDES_SUM_PX
    for x1, y1, x2, y2 in tiles:
        assert 0 <= x1 and x2 <= layout.width and 0 <= y1 and y2 <= layout.height
        assert x1 >= 1280 or y1 >= 720  # never over the photo
    for a, b in combinations(tiles[:300], 2):
        assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_layout_shrinks_thumbnails_only_for_a_crowd():
    assert layout_sheet(1280, 720, 12).tile_px == THUMB_PX
    crowd = layout_sheet(1280, 720, 200)

    assert crowd.tile_px < THUMB_PX
    assert max(crowd.width, crowd.height) <= 2560


def test_layout_puts_thumbnails_beside_a_portrait_and_below_a_landscape():
    beside = layout_sheet(720, 1280, 3)
    below = layout_sheet(1280, 720, 3)

    assert all(x >= 720 for x, _ in beside.tile_origins)
    assert all(y >= 720 for _, y in below.tile_origins)


def test_layout_without_faces_is_the_photo_alone():
    layout = layout_sheet(1280, 720, 0)

    assert (layout.width, layout.height, layout.tile_origins) == (1280, 720, ())


def test_thumbnail_box_is_a_centred_square_with_margin():
    x1, y1, x2, y2 = thumbnail_box((100, 100, 200, 300), margin=1.3)

    assert x2 - x1 == y2 - y1 == 260
    assert (x1 + x2) / 2 == 150 and (y1 + y2) / 2 == 200


def test_thumbnail_of_a_face_at_the_corner_is_full_size():
    photo = np.full((100, 100, 3), 128, np.uint8)

    tile = render_thumbnail(photo, make_face(1, (0, 0, 30, 30)), keep=True, tile_px=96)

    assert tile.shape == (96, 96, 3)


def test_kept_and_changed_faces_have_different_label_colours():
    photo = np.full((720, 1280, 3), 128, np.uint8)
    faces = [make_face(1, (200, 300, 300, 420)), make_face(2, (800, 300, 900, 420))]
    labels = plan_photo_labels(photo.shape, faces, keep={1})

    sheet = decode(render_contact_sheet(photo, faces, keep={1})).astype(int)

    cases = [(labels[0], KEEP_RGB, CHANGE_RGB), (labels[1], CHANGE_RGB, KEEP_RGB)]
    for label, expected, other in cases:
        x1, y1, x2, y2 = label.rect
        pad_pixel = sheet[(y1 + y2) // 2, x1 + 3]  # in the padding, left of the digit
        assert np.abs(pad_pixel - expected).sum() < np.abs(pad_pixel - other).sum()
        assert np.abs(pad_pixel - expected).max() < 40


def test_labels_keep_the_callers_numbers():
    faces = [make_face(7, (10, 10, 50, 50)), make_face(3, (100, 10, 140, 50))]

    labels = plan_photo_labels((200, 200, 3), faces, keep={3})

    assert [(label.number, label.keep) for label in labels] == [(7, False), (3, True)]


def test_label_on_an_8000px_photo_is_at_least_the_minimum_height():
    photo = np.full((2000, 8000, 3), 128, np.uint8)
    face = make_face(1, (4000, 1000, 4030, 1030))  # 30 px: about 5 px on the working photo
    (label,) = plan_photo_labels(photo.shape, [face])
    x1, y1, x2, y2 = label.rect

    sheet = decode(render_contact_sheet(photo, [face])).astype(int)

    assert label.text_px >= MIN_LABEL_TEXT_PX
    assert y2 - y1 >= MIN_LABEL_TEXT_PX
    pad_column = sheet[y1 + 2 : y2 - 2, x1 + 3]
    assert (np.abs(pad_column - CHANGE_RGB).max(axis=1) < 40).all()


def test_labels_of_a_51_face_crowd_do_not_overlap():
    labels = plan_photo_labels((225, 400, 3), crowd_faces())
    rects = [label.rect for label in labels]

    assert len(rects) == 51
    for x1, y1, x2, y2 in rects:
        assert 0 <= x1 and 0 <= y1 and x2 <= 1280 and y2 <= 720
    for a, b in combinations(rects, 2):
        assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_label_of_a_face_at_the_top_edge_stays_inside_the_photo():
    (rect,) = place_labels([(500, 0, 600, 100)], [(60, 30)], (1280, 720))

    assert rect[1] >= 0 and rect[3] <= 720
    assert 500 <= rect[0] and rect[2] <= 600  # inside the box's top


def test_label_prefers_the_spot_above_the_face():
    (rect,) = place_labels([(500, 300, 600, 400)], [(60, 30)], (1280, 720))

    assert rect == (500, 270, 560, 300)


def test_sheet_refuses_a_non_rgb_array():
    with pytest.raises(ValueError):
        render_contact_sheet(np.zeros((10, 10), np.uint8), [])
