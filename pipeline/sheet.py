"""The numbered contact sheet: the photo with a numbered box on every face,
and a grid of numbered face thumbnails beside or below it.

Kept faces are drawn in green, faces to change in orange-red; the number is
the same on the photo and on the thumbnail, so colour and number together say
everything without a legend. The photo part is scaled to a fixed working size
first, so labels are equally readable for a 320-px and an 8000-px photo.

The layout maths (`working_scale`, `label_text_px`, `place_labels`,
`layout_sheet`, `thumbnail_box`) are plain functions with no drawing, and
`render_contact_sheet` only draws what they decide.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Collection, Sequence

import cv2
import numpy as np

from pipeline.imageio import encode_photo
from pipeline.types import Box, Face

logger = logging.getLogger(__name__)

Rect = tuple[int, int, int, int]  # x1, y1, x2, y2 in sheet pixels, x2/y2 exclusive
RGB = tuple[int, int, int]

WORK_SIDE_PX = 1280
"""The photo part's longest side, in pixels, whatever the photo's own size."""

MIN_LABEL_TEXT_PX = 20
"""Smallest digit height on the photo part, in pixels, however small the face."""

MAX_LABEL_TEXT_PX = 56
"""Largest digit height on the photo part, in pixels, however large the face."""

LABEL_TEXT_PER_FACE = 0.3
"""Digit height as a fraction of the face box height, between the two limits."""

THUMB_PX = 160
"""Thumbnail side in pixels when the sheet has room for it."""

MIN_THUMB_PX = 64
"""Thumbnails shrink down to this side, in pixels, to keep a crowd's sheet small."""

THUMB_MARGIN = 1.3
"""A thumbnail shows a square this many times the face box's longer side."""

CARD_THUMB_PX = 256
"""Side of the plain face crops that chats show one per card (Kakao's carousel)."""

GAP_PX = 8
"""Space between thumbnails and around the grid, in pixels."""

SOFT_LONG_SIDE_PX = 2560
"""Telegram scales a photo down to about this longest side; stay within it when we can."""

MAX_SIDES_SUM_PX = 10_000
"""Telegram's hard limit on a photo's width + height, in pixels."""

MAX_SHEET_BYTES = 10_000_000
"""Telegram's photo size limit (10 MB), in bytes."""

JPEG_QUALITIES = (90, 80, 70, 60, 50)
"""Tried in turn until the sheet fits MAX_SHEET_BYTES."""

KEEP_RGB: RGB = (0, 150, 70)
CHANGE_RGB: RGB = (225, 70, 20)
TEXT_RGB: RGB = (255, 255, 255)
OUTLINE_RGB: RGB = (20, 20, 20)
BACKGROUND_RGB: RGB = (40, 40, 40)

FONT = cv2.FONT_HERSHEY_DUPLEX


@dataclass(frozen=True)
class Label:
    """Where one face's number goes on the photo part, and how big."""

    number: int
    keep: bool
    rect: Rect
    text_px: int


@dataclass(frozen=True)
class SheetLayout:
    """The sheet's size and where the photo and each thumbnail go.

    The photo part always sits at the top-left corner, (0, 0).
    """

    width: int
    height: int
    tile_px: int
    tile_origins: tuple[tuple[int, int], ...]  # (x, y) of each thumbnail, in face order


def render_contact_sheet(
    image: np.ndarray, faces: Sequence[Face], keep: Collection[int] = ()
) -> bytes:
    """Draw the numbered contact sheet for a photo.

    Args:
        image: the photo, H×W×3 uint8 RGB, as `load_photo` returns it.
        faces: the faces in the photo's pixels, already numbered by the caller.
        keep: the numbers of the faces to keep (green); all others are to change.

    Returns:
        JPEG bytes within Telegram's photo limits (10 MB, width + height ≤ 10000).
    """
    _check_image(image)
    keep_numbers = {int(n) for n in keep}
    height, width = image.shape[:2]
    scale = working_scale(width, height)
    photo = _resize(image, scale)
    photo_h, photo_w = photo.shape[:2]

    labels = plan_photo_labels(image.shape, faces, keep_numbers)
    for face, label in zip(faces, labels):
        _draw_box(photo, _scale_box(face.box, scale), label)
    for label in labels:
        _draw_label(photo, label)

    layout = layout_sheet(photo_w, photo_h, len(faces))
    sheet = np.empty((layout.height, layout.width, 3), np.uint8)
    sheet[:] = BACKGROUND_RGB
    sheet[:photo_h, :photo_w] = photo
    for face, (x, y) in zip(faces, layout.tile_origins):
        tile = render_thumbnail(image, face, face.number in keep_numbers, layout.tile_px)
        sheet[y : y + layout.tile_px, x : x + layout.tile_px] = tile
    return _encode_within_limit(sheet)


def working_scale(width: int, height: int, side_px: int = WORK_SIDE_PX) -> float:
    """The factor that brings the photo's longest side to `side_px` (up or down)."""
    return side_px / max(width, height)


def label_text_px(face_height_px: float) -> int:
    """Digit height for a face of this height, both on the working photo, in pixels."""
    wanted = round(face_height_px * LABEL_TEXT_PER_FACE)
    return int(min(MAX_LABEL_TEXT_PX, max(MIN_LABEL_TEXT_PX, wanted)))


def measure_label(text: str, text_px: int) -> tuple[int, int]:
    """The (width, height) of a filled label holding `text` with digits `text_px` high."""
    font_scale, thickness = _font_for(text_px)
    (text_w, _), _ = cv2.getTextSize(text, FONT, font_scale, thickness)
    pad = _label_pad(text_px)
    return text_w + 2 * pad, text_px + 2 * pad


def place_labels(
    boxes: Sequence[Box], sizes: Sequence[tuple[int, int]], image_size: tuple[int, int]
) -> list[Rect]:
    """Place one label per box, inside the image, avoiding labels already placed.

    Each label prefers to sit just above its box; then below it, inside its top
    edge, left of it, right of it. The first spot that overlaps no earlier label
    wins; if none is free, the spot with the least overlap.

    Args:
        boxes: face boxes (x1, y1, x2, y2) on the working photo.
        sizes: each label's (width, height).
        image_size: the working photo's (width, height).

    Returns:
        One rect per box, in the same order.
    """
    image_w, image_h = image_size
    placed: list[Rect] = []
    for box, (label_w, label_h) in zip(boxes, sizes):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        corners = [
            (x1, y1 - label_h),  # above, left-aligned
            (x2 - label_w, y1 - label_h),  # above, right-aligned
            (x1, y2),  # below
            (x1, y1),  # inside, top-left
            (x1 - label_w, y1),  # left
            (x2, y1),  # right
        ]
        candidates = [_clamp_rect(x, y, label_w, label_h, image_w, image_h) for x, y in corners]
        overlaps = [sum(_overlap_area(c, other) for other in placed) for c in candidates]
        placed.append(candidates[overlaps.index(min(overlaps))])
    return placed


def plan_photo_labels(
    image_shape: tuple[int, ...], faces: Sequence[Face], keep: Collection[int] = ()
) -> list[Label]:
    """Decide each face's label size and place on the working photo.

    Args:
        image_shape: the original photo's shape, (H, W, ...).
        faces: the faces, in the original photo's pixels.
        keep: the numbers of the faces to keep.

    Returns:
        One `Label` per face, in the same order, in working-photo pixels, which
        are also sheet pixels (the photo part sits at the sheet's top-left).
    """
    height, width = image_shape[:2]
    scale = working_scale(width, height)
    photo_w, photo_h = round(width * scale), round(height * scale)
    boxes = [_scale_box(face.box, scale) for face in faces]
    text_sizes = [label_text_px(box[3] - box[1]) for box in boxes]
    sizes = [measure_label(str(face.number), px) for face, px in zip(faces, text_sizes)]
    rects = place_labels(boxes, sizes, (photo_w, photo_h))
    return [
        Label(face.number, face.number in keep, rect, px)
        for face, rect, px in zip(faces, rects, text_sizes)
    ]


def layout_sheet(
    photo_w: int,
    photo_h: int,
    tile_count: int,
    tile_px: int = THUMB_PX,
    min_tile_px: int = MIN_THUMB_PX,
    gap_px: int = GAP_PX,
) -> SheetLayout:
    """Lay the thumbnail grid below or beside the photo, whichever is squarer.

    Thumbnails start at `tile_px` and shrink (not below `min_tile_px`) until the
    sheet's longest side is within SOFT_LONG_SIDE_PX. Past that, the smallest
    tiles are used as long as width + height stays within MAX_SIDES_SUM_PX; if
    even that fails, the sheet is the photo alone.

    Args:
        photo_w, photo_h: the photo part's size in pixels.
        tile_count: the number of thumbnails (one per face).
        tile_px, min_tile_px: largest and smallest thumbnail side in pixels.
        gap_px: space between and around thumbnails in pixels.

    Returns:
        The sheet's size, the thumbnail side and each thumbnail's origin.
    """
    photo_only = SheetLayout(photo_w, photo_h, 0, ())
    if tile_count == 0:
        return photo_only
    size = tile_px
    while True:
        options = [
            _grid_below(photo_w, photo_h, tile_count, size, gap_px),
            _grid_beside(photo_w, photo_h, tile_count, size, gap_px),
        ]
        best = min(options, key=lambda o: max(o.width, o.height))
        if max(best.width, best.height) <= SOFT_LONG_SIDE_PX:
            return best
        if size <= min_tile_px:
            break
        size = max(min_tile_px, size - 8)
    options.append(_grid_below(photo_w, photo_h, tile_count, size, gap_px, square=True))
    fitting = [o for o in options if o.width + o.height <= MAX_SIDES_SUM_PX]
    if not fitting:
        logger.warning("%d faces do not fit a contact sheet; showing the photo only", tile_count)
        return photo_only
    return min(fitting, key=lambda o: max(o.width, o.height))


def thumbnail_box(box: Box, margin: float = THUMB_MARGIN) -> Rect:
    """A square around the box's centre, `margin` times its longer side, at least 2 px."""
    x1, y1, x2, y2 = box
    side = max(2, int(round(max(x2 - x1, y2 - y1) * margin)))
    left = int(round((x1 + x2) / 2 - side / 2))
    top = int(round((y1 + y2) / 2 - side / 2))
    return left, top, left + side, top + side


def render_face_crops(image: np.ndarray, faces: Sequence[Face], tile_px: int = CARD_THUMB_PX) -> tuple[bytes, ...]:
    """Each face as a plain square JPEG (no frame or number), for chats that show faces one per card."""
    crops = []
    for face in faces:
        crop = _crop_padded(image, thumbnail_box(face.box))
        interpolation = cv2.INTER_AREA if crop.shape[0] > tile_px else cv2.INTER_LINEAR
        crops.append(encode_photo(cv2.resize(crop, (tile_px, tile_px), interpolation=interpolation), "jpeg", 90))
    return tuple(crops)


def render_thumbnail(image: np.ndarray, face: Face, keep: bool, tile_px: int) -> np.ndarray:
    """One face's numbered, coloured-framed square thumbnail, `tile_px` on a side."""
    crop = _crop_padded(image, thumbnail_box(face.box))
    interpolation = cv2.INTER_AREA if crop.shape[0] > tile_px else cv2.INTER_LINEAR
    tile = cv2.resize(crop, (tile_px, tile_px), interpolation=interpolation)
    colour = KEEP_RGB if keep else CHANGE_RGB
    frame = max(2, tile_px // 32)
    cv2.rectangle(tile, (0, 0), (tile_px - 1, tile_px - 1), colour, 2 * frame)
    text_px = max(14, round(tile_px * 0.22))
    label_w, label_h = measure_label(str(face.number), text_px)
    label = Label(face.number, keep, (0, 0, label_w, label_h), text_px)
    _draw_label(tile, label, outline=False)
    return tile


def _grid_below(
    photo_w: int, photo_h: int, count: int, tile: int, gap: int, square: bool = False
) -> SheetLayout:
    step = tile + gap
    columns = max(1, (photo_w - gap) // step)
    if square:
        columns = max(columns, math.ceil(math.sqrt(count)))
    rows = math.ceil(count / columns)
    width = max(photo_w, gap + columns * step)
    left = (width - (gap + columns * step)) // 2  # centre the grid under the photo
    origins = tuple(
        (left + gap + (i % columns) * step, photo_h + gap + (i // columns) * step)
        for i in range(count)
    )
    return SheetLayout(width, photo_h + gap + rows * step, tile, origins)


def _grid_beside(photo_w: int, photo_h: int, count: int, tile: int, gap: int) -> SheetLayout:
    step = tile + gap
    rows = max(1, (photo_h - gap) // step)
    columns = math.ceil(count / rows)
    rows = math.ceil(count / columns)  # fill columns evenly
    origins = tuple(
        (photo_w + gap + (i % columns) * step, gap + (i // columns) * step) for i in range(count)
    )
    return SheetLayout(
        photo_w + gap + columns * step, max(photo_h, gap + rows * step), tile, origins
    )


def _clamp_rect(x: int, y: int, w: int, h: int, image_w: int, image_h: int) -> Rect:
    x = min(max(0, x), max(0, image_w - w))
    y = min(max(0, y), max(0, image_h - h))
    return x, y, x + w, y + h


def _overlap_area(a: Rect, b: Rect) -> int:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0


def _font_for(text_px: int) -> tuple[float, int]:
    """cv2 font scale and stroke thickness that make digits `text_px` high."""
    thickness = max(1, round(text_px / 11))
    (_, digit_h), _ = cv2.getTextSize("0", FONT, 1.0, thickness)
    return text_px / digit_h, thickness


def _label_pad(text_px: int) -> int:
    return max(4, round(text_px * 0.3))


def _scale_box(box: Box, scale: float) -> Box:
    x1, y1, x2, y2 = box
    return x1 * scale, y1 * scale, x2 * scale, y2 * scale


def _draw_box(photo: np.ndarray, box: Box, label: Label) -> None:
    colour = KEEP_RGB if label.keep else CHANGE_RGB
    thickness = max(2, round(label.text_px / 8))
    top_left = (int(round(box[0])), int(round(box[1])))
    bottom_right = (int(round(box[2])), int(round(box[3])))
    cv2.rectangle(photo, top_left, bottom_right, OUTLINE_RGB, thickness + 2, cv2.LINE_AA)
    cv2.rectangle(photo, top_left, bottom_right, colour, thickness, cv2.LINE_AA)


def _draw_label(canvas: np.ndarray, label: Label, outline: bool = True) -> None:
    """A filled rect in the keep/change colour with the number centred in white."""
    x1, y1, x2, y2 = label.rect
    colour = KEEP_RGB if label.keep else CHANGE_RGB
    if outline:
        cv2.rectangle(canvas, (x1 - 1, y1 - 1), (x2, y2), OUTLINE_RGB, 1)
    cv2.rectangle(canvas, (x1, y1), (x2 - 1, y2 - 1), colour, cv2.FILLED)
    text = str(label.number)
    font_scale, thickness = _font_for(label.text_px)
    (text_w, _), _ = cv2.getTextSize(text, FONT, font_scale, thickness)
    origin = (x1 + (x2 - x1 - text_w) // 2, y1 + (y2 - y1 + label.text_px) // 2)
    cv2.putText(canvas, text, origin, FONT, font_scale, TEXT_RGB, thickness, cv2.LINE_AA)


def _crop_padded(image: np.ndarray, rect: Rect) -> np.ndarray:
    """The image inside `rect`, with the background colour where it leaves the image."""
    x1, y1, x2, y2 = rect
    height, width = image.shape[:2]
    crop = np.empty((y2 - y1, x2 - x1, 3), np.uint8)
    crop[:] = BACKGROUND_RGB
    sx1, sy1, sx2, sy2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
    if sx1 < sx2 and sy1 < sy2:
        crop[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = image[sy1:sy2, sx1:sx2]
    return crop


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == (width, height):
        return image.copy()
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)


def _encode_within_limit(sheet: np.ndarray) -> bytes:
    """JPEG at the best quality that fits MAX_SHEET_BYTES; shrink if none does."""
    while True:
        for quality in JPEG_QUALITIES:
            data = encode_photo(sheet, "jpeg", quality)
            if len(data) <= MAX_SHEET_BYTES:
                return data
        sheet = _resize(sheet, 0.75)


def _check_image(image: np.ndarray) -> None:
    is_rgb = isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3
    if not is_rgb or image.dtype != np.uint8:
        shape = getattr(image, "shape", type(image).__name__)
        raise ValueError(f"expected an H×W×3 uint8 RGB image, got {shape}")
