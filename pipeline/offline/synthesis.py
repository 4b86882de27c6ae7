"""Procedural face masks drawn onto a face from its 68 landmarks: the masked half of unmask's training pairs.

No image assets. The shape comes from the landmarks: from the nose bridge
(between landmarks 27 and 30) down past the chin, cheek to cheek along the jaw
line, its top edge kept below the lower eyelids. The look comes from the style
(surgical pleats and ear loops, a KF94's boat shape with its centre seam and
side folds, a cloth mask's weave and stitching) and the colour, lit by the
face's own low-frequency light, with a contact shadow and grain so it does not
look pasted on.

Everything is drawn in an upright canvas: the face rotated so its eyes are
level, small faces drawn several times larger (then area-averaged down, so
edges are anti-aliased at any size), huge ones smaller. The layers are then
warped back onto the photo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.align import transform_points
from pipeline.face.colour import noise_level
from pipeline.face.landmarks import JAW, LEFT_EYE, RIGHT_EYE

MASK_STYLES = ("surgical", "kf94", "cloth")
MASK_COLOURS = ("white", "blue", "black", "patterned")

RENDER_MIN_PX = 32.0  # faces are drawn with at least this eye-to-mouth distance, then area-averaged down ...
RENDER_MAX_PX = 256.0  # ... and with at most this one, then warped up
EYE_MARGIN = 0.12  # the top edge stays this far below the lower eyelids (eye-to-mouth distances, as below)
EDGE_SOFTNESS_PX = 0.6  # Gaussian softening of the outline in photo pixels, on top of its anti-aliasing
SHADOW_REACH = 0.035  # the contact shadow on the skin fades over this distance outside the edge ...
SHADOW_STRENGTH = (0.15, 0.3)  # ... from this much darkening at the edge
GRAIN_RANGE = (1.0, 6.0)  # the mask's grain follows the face's own noise (0-255 levels), within these bounds
LOOP_REACH = 0.45  # the canvas reaches this far beyond the jaw sideways, for the ear loops
BLUR_INTRINSIC, BLUR_SLOPE = 0.95, 1.6  # photo_blur's calibration: measured width² = INTRINSIC + SLOPE * sigma²
NEGLIGIBLE = 1.0 / 512  # coverage or shadow below this is cut to exactly zero

LOWER_LIDS = ([36, 41, 40, 39], [42, 47, 46, 45])  # each eye's lower lid, outer corner to inner (left eye) or inner to outer
MIDLINE = [30, 33, 51, 62, 66, 57, 8]  # the points down the middle of the face below the nose bridge

# Albedos (sRGB, 0-1) of the solid colours ...
SOLID_ALBEDO = {"white": (0.93, 0.94, 0.95), "blue": (0.55, 0.74, 0.88), "black": (0.075, 0.075, 0.085)}
# ... and the colour pairs of printed fabric (ground, print).
PATTERN_PALETTE = (
    ((0.13, 0.17, 0.36), (0.92, 0.92, 0.90)),  # navy / white
    ((0.72, 0.12, 0.14), (0.95, 0.93, 0.90)),  # red / cream
    ((0.10, 0.10, 0.11), (0.80, 0.80, 0.80)),  # black / grey
    ((0.93, 0.70, 0.76), (0.98, 0.97, 0.96)),  # pink / white
    ((0.18, 0.36, 0.26), (0.88, 0.82, 0.66)),  # green / beige
    ((0.45, 0.47, 0.50), (0.96, 0.82, 0.25)),  # grey / yellow
    ((0.25, 0.45, 0.75), (0.97, 0.97, 0.98)),  # mid blue / white
)
PATTERNS = ("stripes", "dots", "check")


@dataclass(frozen=True)
class SyntheticMask:
    """A face wearing a synthetic mask.

    `mask` is 1 where the mask covers the face, soft at its edge; its ear loops
    count as covering, and the contact shadow it casts on the skin just outside
    its edge shows as a low value, so every pixel the mask changed has mask > 0
    and every other pixel is the clean photo's own.
    """

    image: np.ndarray  # h×w×3 uint8 RGB: the face wearing the mask
    mask: np.ndarray  # h×w float32 in [0, 1]: where the mask covers the face (1 = covered)
    style: str
    colour: str


@dataclass(frozen=True)
class StyleShape:
    """Ranges the outline of one style is drawn from (distances in eye-to-mouth units)."""

    bridge: tuple[float, float]  # top centre, from landmark 27 (0) to the nose tip 30 (1)
    top_power: tuple[float, float]  # profile of the top edge: below 1 a peak at the nose, above 1 a broad arc
    corner: tuple[float, float]  # top corners, as a position along the jaw points 0..8 (mirrored on the right)
    side: tuple[float, float]  # reach beyond the jaw line at the cheeks
    chin: tuple[float, float]  # reach below the chin
    chin_points: float  # how many jaw points either side of the chin share its reach (the bottom's roundness)
    boxiness: tuple[float, float]  # how far the bottom edge is pulled down towards a straight line under the chin


STYLE_SHAPES = {
    "surgical": StyleShape((0.3, 0.5), (0.8, 1.2), (1.0, 1.7), (0.02, 0.05), (0.12, 0.25), 3.0, (0.3, 0.7)),
    "kf94": StyleShape((0.22, 0.42), (0.5, 0.75), (1.1, 1.6), (0.03, 0.06), (0.22, 0.36), 1.8, (0.0, 0.0)),
    "cloth": StyleShape((0.3, 0.5), (1.3, 1.9), (1.2, 1.8), (0.03, 0.06), (0.14, 0.26), 4.0, (0.0, 0.15)),
}


@dataclass(frozen=True)
class Canvas:
    """The upright drawing canvas of one face."""

    matrix: np.ndarray  # 2×3 photo pixels -> canvas pixels
    back_matrix: np.ndarray  # 2×3 photo pixels -> the canvas after it is area-averaged down (photo scale)
    size: tuple[int, int]  # (h, w) of the canvas
    scale: float  # canvas pixels per photo pixel
    eye_to_mouth: float  # in canvas pixels

    @property
    def supersample(self) -> int:
        """Canvas pixels per photo pixel when the face is drawn larger (then area-averaged down), else 1."""
        return int(self.scale) if self.scale > 1 else 1


@dataclass(frozen=True)
class Layout:
    """Where the mask is on the canvas, and coordinates over its surface."""

    points: np.ndarray  # 68×2 landmarks in canvas pixels
    cover: np.ndarray  # h×w anti-aliased coverage of the outline, before softening
    inside: np.ndarray  # h×w bool, the outline filled
    s: np.ndarray  # h×w across the mask: 0 at its left edge, 0.5 on the face's midline, 1 at its right edge
    t: np.ndarray  # h×w down the mask: 0 at its top edge, 1 at its bottom edge
    from_midline: np.ndarray  # h×w signed pixels from the midline
    from_edge: np.ndarray  # h×w pixels to the outline, inside it
    from_top: np.ndarray  # h×w pixels below the top edge
    top_centre: np.ndarray  # (x, y) of the top edge over the nose
    corners: np.ndarray  # 4×2: top-left, top-right, bottom-left, bottom-right corner on the cheeks
    width: float  # the mask's width at the mouth, pixels
    height: float  # its height on the midline, pixels


def synthesise_mask(
    image: np.ndarray, points68: np.ndarray, rng: np.random.Generator, style: str | None = None, colour: str | None = None
) -> SyntheticMask:
    """Draw a face mask on the face with these 68 landmarks.

    Args:
        image: h×w×3 uint8 RGB photo (not changed).
        points68: the face's 68 dlib landmarks in the photo's pixels.
        rng: all random choices come from it, so a seeded generator gives the same mask.
        style: one of MASK_STYLES; None picks one at random.
        colour: one of MASK_COLOURS; None picks one at random.
    """
    image = np.asarray(image)
    points = np.asarray(points68, dtype=np.float64)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an h×w×3 uint8 RGB image, got {image.dtype} {image.shape}")
    if points.shape != (68, 2):
        raise ValueError(f"expected 68×2 landmarks, got {points.shape}")
    style = MASK_STYLES[int(rng.integers(len(MASK_STYLES)))] if style is None else style
    colour = MASK_COLOURS[int(rng.integers(len(MASK_COLOURS)))] if colour is None else colour
    if style not in MASK_STYLES:
        raise ValueError(f"unknown mask style {style!r}; choose one of {', '.join(MASK_STYLES)}")
    if colour not in MASK_COLOURS:
        raise ValueError(f"unknown mask colour {colour!r}; choose one of {', '.join(MASK_COLOURS)}")

    canvas = make_canvas(points)
    height, width = canvas.size
    face = cv2.warpAffine(image, canvas.matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    layout = lay_out(canvas, transform_points(points, canvas.matrix), STYLE_SHAPES[style], rng)
    light, exposure = face_light(face, layout.inside, canvas.eye_to_mouth)
    ground, print_colour = fabric_colours(colour, rng)
    grey = is_greyscale(face)
    albedo = fabric_albedo(colour, ground, print_colour, layout, canvas.eye_to_mouth, rng)
    shade, relief = STYLE_RELIEF[style](layout, canvas.eye_to_mouth, rng)
    shade = shade * general_shading(layout, canvas.eye_to_mouth, rng)
    # Sheen: light the fabric reflects whatever its colour, so the folds of a black mask show too.
    sheen = float(rng.uniform(0.1, 0.2)) * np.maximum(relief, 0) + float(rng.uniform(0.01, 0.03)) * (1 - np.abs(2 * layout.s - 1) ** 2)
    rgb = (albedo * (shade * (1 + relief))[..., None] + sheen[..., None]) * (light * exposure)[..., None]

    cover = soften(layout.cover, EDGE_SOFTNESS_PX * canvas.scale)
    loops, elastic = ear_loops(style, colour, ground, layout, canvas.eye_to_mouth, rng)
    loops *= 1 - cover
    alpha = cover + loops
    premultiplied = rgb * cover[..., None] + elastic * (loops * light * exposure)[..., None]
    if grey:
        premultiplied = premultiplied @ np.array([[0.299] * 3, [0.587] * 3, [0.114] * 3], dtype=np.float32)
    shadow = contact_shadow(cover, canvas.eye_to_mouth, rng)
    layers = np.dstack([np.clip(premultiplied, 0, 1) * 255, alpha, shadow]).astype(np.float32)
    return composite(image, layers, canvas, style, colour, rng)


def make_canvas(points: np.ndarray) -> Canvas:
    """An upright canvas around the lower face at a scale where the mask's details can be drawn."""
    left_eye, right_eye = points[LEFT_EYE].mean(axis=0), points[RIGHT_EYE].mean(axis=0)
    eyes = (left_eye + right_eye) / 2
    eye_to_mouth = max(1.0, float(np.hypot(*((points[48] + points[54]) / 2 - eyes))))
    angle = math.atan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0])
    rotation = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
    upright = (points - eyes) @ rotation.T
    x1 = upright[JAW, 0].min() - LOOP_REACH * eye_to_mouth
    x2 = upright[JAW, 0].max() + LOOP_REACH * eye_to_mouth
    y1 = upright[LEFT_EYE + RIGHT_EYE, 1].min() - 0.3 * eye_to_mouth
    y2 = upright[8, 1] + 0.6 * eye_to_mouth
    to_upright = np.hstack([rotation, (-rotation @ eyes - [math.floor(x1), math.floor(y1)])[:, None]])
    base_size = (math.ceil(y2 - math.floor(y1)) + 1, math.ceil(x2 - math.floor(x1)) + 1)
    if eye_to_mouth < RENDER_MIN_PX:
        scale: float = math.ceil(RENDER_MIN_PX / eye_to_mouth)
        size = (base_size[0] * int(scale), base_size[1] * int(scale))
    else:
        scale = min(1.0, RENDER_MAX_PX / eye_to_mouth)
        size = (math.ceil(base_size[0] * scale), math.ceil(base_size[1] * scale))
    # Pixel centres: canvas x = scale * (upright x + 0.5) - 0.5, as cv2.resize maps them.
    matrix = scale * to_upright + np.array([[0, 0, (scale - 1) / 2], [0, 0, (scale - 1) / 2]])
    return Canvas(matrix, to_upright if scale > 1 else matrix, size, scale, eye_to_mouth * scale)


def chaikin(polyline: np.ndarray, iterations: int = 2) -> np.ndarray:
    """An open polyline with its corners cut (Chaikin), ends kept: a smooth curve through its middle."""
    for _ in range(iterations):
        a, b = polyline[:-1], polyline[1:]
        middle = np.stack([0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b], axis=1).reshape(-1, 2)
        polyline = np.vstack([polyline[:1], middle, polyline[-1:]])
    return polyline


def top_edge(points: np.ndarray, shape: StyleShape, e: float, width: int, rng: np.random.Generator):
    """The top edge as one y per canvas column, between its two corners, and those corners.

    From the nose bridge it falls to the corners on the cheeks; where it would
    reach the eyes it is pushed down to EYE_MARGIN below the lower lids.
    """
    top_centre = points[27] + rng.uniform(*shape.bridge) * (points[30] - points[27])
    corner = rng.uniform(*shape.corner)
    side = rng.uniform(*shape.side) * e
    along = np.arange(9)
    left = np.array([np.interp(corner, along, points[0:9, i]) for i in (0, 1)]) - [side, 0.0]
    right = np.array([np.interp(corner, along, points[16:7:-1, i]) for i in (0, 1)]) + [side, 0.0]
    power = rng.uniform(*shape.top_power)
    columns = np.arange(width, dtype=np.float64)
    reach = np.where(columns < top_centre[0], (top_centre[0] - columns) / max(top_centre[0] - left[0], 1.0),
                     (columns - top_centre[0]) / max(right[0] - top_centre[0], 1.0))
    corner_y = np.where(columns < top_centre[0], left[1], right[1])
    top = top_centre[1] + (corner_y - top_centre[1]) * np.clip(reach, 0, 1) ** power
    floor = np.full(width, -np.inf)
    for lid in LOWER_LIDS:
        lid_points = points[lid][np.argsort(points[lid][:, 0])]
        xs = np.concatenate([[lid_points[0, 0] - 0.2 * e], lid_points[:, 0], [lid_points[-1, 0] + 0.15 * e]])
        ys = np.concatenate([[lid_points[0, 1]], lid_points[:, 1], [lid_points[-1, 1]]]) + EYE_MARGIN * e
        near = (columns >= xs[0]) & (columns <= xs[-1])
        floor[near] = np.maximum(floor[near], np.interp(columns[near], xs, ys))
    top = np.maximum(top, floor)
    top = cv2.GaussianBlur(top[None, :], (0, 0), sigmaX=max(0.5, 0.03 * e), borderType=cv2.BORDER_REPLICATE)[0]
    return np.maximum(top, floor), top_centre, left, right


def bottom_edge(points: np.ndarray, left: np.ndarray, right: np.ndarray, shape: StyleShape, e: float,
                rng: np.random.Generator) -> np.ndarray:
    """The outline from the left top corner along the jaw, under the chin, up to the right top corner."""
    jaw = points[JAW]
    tangent = np.gradient(jaw, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-6)
    centre = points[30]
    normal *= np.sign(((jaw - centre) * normal).sum(axis=1, keepdims=True) + 1e-9)  # outward, away from the nose
    side, chin = rng.uniform(*shape.side) * e, rng.uniform(*shape.chin) * e
    weight = np.exp(-(((np.arange(17) - 8) / shape.chin_points) ** 2))
    offset = jaw + normal * (side + (chin - side) * weight)[:, None]
    outline = np.vstack([left, offset[2:15], right])
    lowest = outline[:, 1].max()
    pull = rng.uniform(*shape.boxiness) * smoothstep(0.0, 1.0, (outline[:, 1] - min(left[1], right[1])) / max(lowest - min(left[1], right[1]), 1.0))
    outline[:, 1] += pull * (lowest - outline[:, 1])
    return chaikin(outline, 3)


def lay_out(canvas: Canvas, points: np.ndarray, shape: StyleShape, rng: np.random.Generator) -> Layout:
    """The mask's outline on the canvas and the coordinates over its surface."""
    height, width = canvas.size
    e = canvas.eye_to_mouth
    top, top_centre, left, right = top_edge(points, shape, e, width, rng)
    bottom = bottom_edge(points, left, right, shape, e, rng)
    columns = np.arange(math.ceil(left[0]), math.floor(right[0]) + 1)
    columns = columns[(columns >= 0) & (columns < width)]
    outline = np.vstack([[left], np.stack([columns, top[columns]], axis=1), [right], bottom[::-1]])
    fixed = np.round(outline * 16).astype(np.int32)[None]
    cover = np.zeros((height, width), np.uint8)
    cv2.fillPoly(cover, fixed, 255, lineType=cv2.LINE_AA, shift=4)
    inside = np.zeros((height, width), np.uint8)
    cv2.fillPoly(inside, fixed, 1, lineType=cv2.LINE_8, shift=4)
    cover = cover.astype(np.float32) / 255
    inside = inside.astype(bool)

    # Sub-pixel extents of every column and row (the outline's partial coverage at its ends).
    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]
    any_col, any_row = inside.any(axis=0), inside.any(axis=1)
    first_row = np.where(any_col, inside.argmax(axis=0), 0)
    last_row = np.where(any_col, height - 1 - inside[::-1].argmax(axis=0), 0)
    first_col = np.where(any_row, inside.argmax(axis=1), 0)
    last_col = np.where(any_row, width - 1 - inside[:, ::-1].argmax(axis=1), 0)
    col_index = np.arange(width)
    row_index = np.arange(height)
    top_y = first_row + 0.5 - cover[first_row, col_index]
    bottom_y = last_row - 0.5 + cover[last_row, col_index]
    left_x = first_col + 0.5 - cover[row_index, first_col]
    right_x = last_col - 0.5 + cover[row_index, last_col]
    t = np.clip((rows - top_y[None, :]) / np.maximum(bottom_y - top_y, 1.0)[None, :], 0, 1)
    midline = np.vstack([top_centre, points[MIDLINE]])
    mid_x = np.interp(rows[:, 0], midline[:, 1], midline[:, 0])[:, None]
    left_half = 0.5 * (cols - left_x[:, None]) / np.maximum(mid_x - left_x[:, None], 1.0)
    right_half = 0.5 + 0.5 * (cols - mid_x) / np.maximum(right_x[:, None] - mid_x, 1.0)
    s = np.clip(np.where(cols < mid_x, left_half, right_half), 0, 1)
    from_edge = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)
    mouth_row = int(np.clip(round((points[48, 1] + points[54, 1]) / 2), 0, height - 1))
    centre_col = int(np.clip(round(top_centre[0]), 0, width - 1))
    half = len(bottom) // 2  # the bottom outline runs from the left top corner to the right one
    bottom_corner_left = bottom[np.argmin(np.abs(bottom[:half, 1] - points[[3, 4], 1].mean()))]
    bottom_corner_right = bottom[half + np.argmin(np.abs(bottom[half:, 1] - points[[12, 13], 1].mean()))]
    return Layout(
        points=points, cover=cover, inside=inside, s=s.astype(np.float32), t=t.astype(np.float32),
        from_midline=(cols - mid_x).astype(np.float32), from_edge=from_edge,
        from_top=(rows - top_y[None, :]).astype(np.float32), top_centre=top_centre,
        corners=np.array([left, right, bottom_corner_left, bottom_corner_right]),
        width=float(max(1.0, right_x[mouth_row] - left_x[mouth_row])),
        height=float(max(1.0, bottom_y[centre_col] - top_y[centre_col])),
    )


def face_light(face: np.ndarray, inside: np.ndarray, e: float) -> tuple[np.ndarray, float]:
    """The face's own light under the mask, and the photo's exposure.

    Light: a smooth quadratic fitted (robustly) to the log luminance of the face
    where the mask goes, relative to its median, so shading that crosses the
    face (a lamp from one side, a darker chin) crosses the mask too.
    Exposure: how bright a white surface comes out, from the face's bright
    skin and the brightest things around it, so a mask is not glowing in a dim photo.
    """
    luminance = (face.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255
    height, width = inside.shape
    ys, xs = np.nonzero(inside)
    step = max(1, len(ys) // 1500)
    ys, xs = ys[::step], xs[::step]
    bright_skin = float(np.percentile(luminance[inside], 90)) if len(ys) else 0.75
    exposure = float(np.clip(max(bright_skin / 0.75, np.percentile(luminance, 98) / 0.95), 0.45, 1.05))
    if len(ys) < 12:
        return np.ones((height, width), np.float32), exposure

    def basis(x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        x, y = (x - width / 2) / e, (y - height / 2) / e
        return [np.ones_like(x), x, y, x * x, x * y, y * y]

    target = np.log(luminance[ys, xs] + 0.03)
    design = np.stack(basis(xs.astype(np.float32), ys.astype(np.float32)), axis=1)
    keep = np.ones(len(target), bool)
    for _ in range(3):  # refit without outliers: nostrils, lips, a beard, a highlight
        kept = design[keep]
        coefficients = np.linalg.solve(kept.T @ kept + 1e-6 * np.eye(6), kept.T @ target[keep])
        residual = target - design @ coefficients
        keep = np.abs(residual) <= 2.5 * 1.4826 * np.median(np.abs(residual[keep])) + 1e-3
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
    fitted = sum(c * b for c, b in zip(coefficients, basis(grid_x, grid_y)))
    fitted -= np.median(fitted[inside])
    return np.clip(np.exp(0.8 * fitted), 0.55, 1.35).astype(np.float32), exposure


def is_greyscale(face: np.ndarray) -> bool:
    """A black-and-white photo: a coloured mask on it would give itself away."""
    values = face.astype(np.int16)
    return float(np.abs(values[..., 0] - values[..., 1]).mean() + np.abs(values[..., 1] - values[..., 2]).mean()) < 2.0


def fabric_colours(colour: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(ground, print) albedos; a solid colour is slightly varied and prints nothing."""
    if colour == "patterned":
        ground, printed = PATTERN_PALETTE[int(rng.integers(len(PATTERN_PALETTE)))]
        if rng.random() < 0.5:
            ground, printed = printed, ground
        return np.array(ground, np.float32), np.array(printed, np.float32)
    ground = np.clip(np.array(SOLID_ALBEDO[colour]) * rng.uniform(0.96, 1.03) * (1 + rng.normal(0, 0.006, 3)), 0, 1)
    return ground.astype(np.float32), ground.astype(np.float32)


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0, 1)
    return t * t * (3 - 2 * t)


def fabric_albedo(colour: str, ground: np.ndarray, printed: np.ndarray, layout: Layout, e: float,
                  rng: np.random.Generator) -> np.ndarray:
    """h×w×3 albedo: the solid colour, or a print (stripes, dots or check) that follows the mask's surface."""
    shape = layout.s.shape
    if colour != "patterned":
        return np.broadcast_to(ground, (*shape, 3)).astype(np.float32)
    x, y = layout.s * layout.width, layout.t * layout.height  # pixels along the surface
    period = rng.uniform(0.12, 0.3) * e
    kind = PATTERNS[int(rng.integers(len(PATTERNS)))]
    if kind == "stripes":
        angle = rng.choice([0.0, 0.25, 0.5, -0.25]) * math.pi
        phase = (x * math.cos(angle) + y * math.sin(angle)) / period
        amount = smoothstep(-0.6, 0.6, (np.abs((phase % 1.0) - 0.5) - 0.25) * period)
    elif kind == "dots":
        row = np.floor(y / period)
        column = (x / period + 0.5 * (row % 2)) % 1.0 - 0.5
        distance = np.hypot(column, (y / period) % 1.0 - 0.5) * period
        amount = 1 - smoothstep(-0.6, 0.6, distance - rng.uniform(0.22, 0.35) * period)
    else:  # gingham: two sets of half-tone stripes
        bands = [smoothstep(-0.6, 0.6, (np.abs((v / period) % 1.0 - 0.5) - 0.25) * period) for v in (x, y)]
        amount = 0.5 * (bands[0] + bands[1])
    amount = amount.astype(np.float32)[..., None]
    return (ground * (1 - amount) + printed * amount).astype(np.float32)


def general_shading(layout: Layout, e: float, rng: np.random.Generator) -> np.ndarray:
    """Shading every mask has: its sides turn away from the camera, the part under the chin faces down,
    and a faint mottle of the fabric."""
    across = 1 - rng.uniform(0.12, 0.25) * np.abs(2 * layout.s - 1) ** 2
    rows = np.arange(layout.s.shape[0], dtype=np.float32)[:, None]
    chin = layout.points[8, 1]
    under_chin = 1 - rng.uniform(0.12, 0.3) * smoothstep(chin - 0.05 * e, chin + 0.3 * e, rows)
    mottle = cv2.GaussianBlur(rng.normal(0, 1, layout.s.shape).astype(np.float32), (0, 0), max(1.0, 0.08 * e))
    mottle *= rng.uniform(0.01, 0.025) / max(float(mottle.std()), 1e-6)
    return (across * under_chin * (1 + mottle)).astype(np.float32)


def line(distance: np.ndarray, width: float) -> np.ndarray:
    """A soft line profile (1 on the line, 0 away from it) of a given half-width in pixels."""
    return np.exp(-((distance / max(width, 0.5)) ** 2))


def surgical_relief(layout: Layout, e: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Three horizontal pleats (a lit ridge over a shadow), hems along the edges and the nose wire."""
    relief = np.zeros_like(layout.t)
    band = rng.uniform(0.045, 0.065)  # pleat width in t
    start = rng.uniform(0.24, 0.32)
    spacing = rng.uniform(0.18, 0.22)
    for k in range(3):
        d = (layout.t - (start + k * spacing + rng.normal(0, 0.01))) / band
        strength = rng.uniform(0.14, 0.26)
        relief += strength * (0.7 * np.exp(-(((d + 0.6) / 0.5) ** 2)) - np.exp(-(((d - 0.45) / 0.45) ** 2)))
    relief *= 0.55 + 0.45 * np.abs(2 * layout.s - 1)  # pleats open up over the chin and show least at the centre
    hem = 0.045 * e
    relief -= 0.08 * line(layout.from_edge - hem, 0.01 * e + 0.5)
    relief += 0.03 * (layout.from_edge < hem)
    wire = (np.abs(layout.from_midline) < 0.4 * e) * line(layout.from_top - 0.03 * e, 0.025 * e)
    relief += 0.06 * wire - 0.06 * (np.abs(layout.from_midline) < 0.4 * e) * line(layout.from_top - 0.07 * e, 0.015 * e + 0.5)
    return np.ones_like(relief), relief.astype(np.float32)


def kf94_relief(layout: Layout, e: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two panels meeting in a centre seam, side folds, a welded rim and a nose wire."""
    lit_side = rng.choice([-1.0, 1.0]) * rng.uniform(0.03, 0.09)
    shade = 1 + lit_side * np.tanh(layout.from_midline / (0.04 * e))
    seam_width = 0.008 * e + 0.5
    relief = -0.16 * line(layout.from_midline, seam_width) + 0.06 * line(layout.from_midline - np.sign(lit_side) * 2.5 * seam_width, seam_width)
    for fold in (rng.uniform(0.12, 0.2), rng.uniform(0.8, 0.88)):
        distance = (layout.s - fold) * layout.width
        relief += -0.09 * line(distance, 0.01 * e + 0.5) + 0.04 * line(distance + np.sign(fold - 0.5) * 0.03 * e, 0.015 * e)
    relief -= 0.07 * line(layout.from_edge - 0.03 * e, 0.008 * e + 0.5)  # the welded rim
    wire = (np.abs(layout.from_midline) < 0.3 * e) * line(layout.from_top - 0.03 * e, 0.02 * e)
    relief += 0.05 * wire
    return shade.astype(np.float32), relief.astype(np.float32)


def cloth_relief(layout: Layout, e: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A woven texture, soft wrinkles, a centre seam and stitching along the edges."""
    rows, cols = np.mgrid[0 : layout.s.shape[0], 0 : layout.s.shape[1]].astype(np.float32)
    weave_period = max(2.2, rng.uniform(0.02, 0.035) * e)
    weave = np.sin(2 * math.pi * cols / weave_period) * np.sin(2 * math.pi * rows / weave_period)
    relief = rng.uniform(0.02, 0.05) * weave
    angle = rng.uniform(0, math.pi)
    wrinkles = np.sin(2 * math.pi * (cols * math.cos(angle) + rows * math.sin(angle)) / (rng.uniform(0.25, 0.45) * e) + rng.uniform(0, 6.3))
    relief += rng.uniform(0.02, 0.05) * wrinkles * np.abs(2 * layout.s - 1)
    relief += -0.1 * line(layout.from_midline, 0.01 * e + 0.5) + 0.05 * line(np.abs(layout.from_midline) - 0.03 * e, 0.02 * e)
    inset = rng.uniform(0.04, 0.06) * e
    centre = np.array([layout.top_centre[0], layout.top_centre[1] + layout.height / 2])
    along = np.arctan2(rows - centre[1], cols - centre[0]) * (layout.width / 2)  # arc length around the outline, roughly
    stitches = smoothstep(-0.3, 0.3, np.sin(2 * math.pi * along / max(3.0, 0.05 * e)))
    relief -= 0.15 * stitches * line(layout.from_edge - inset, 0.008 * e + 0.5)
    return np.ones_like(relief), relief.astype(np.float32)


STYLE_RELIEF = {"surgical": surgical_relief, "kf94": kf94_relief, "cloth": cloth_relief}


def ear_loops(style: str, colour: str, ground: np.ndarray, layout: Layout, e: float,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The loops from the mask's corners towards the ears (h×w coverage, their albedo), fading as they go behind the ear.

    The side turned away from the camera has none (its ear is hidden).
    """
    height, width = layout.s.shape
    points, corners = layout.points, layout.corners
    loops = np.zeros((height, width), np.float32)
    rows, cols = np.arange(height, dtype=np.float32)[:, None], np.arange(width, dtype=np.float32)[None, :]
    elastic = ground if style == "cloth" else (np.array([0.1, 0.1, 0.11], np.float32) if colour == "black" else np.array([0.92, 0.92, 0.92], np.float32))
    thickness = (0.05 if style == "cloth" else 0.022) * e
    half_widths = (layout.top_centre[0] - corners[0, 0], corners[1, 0] - layout.top_centre[0])
    for side, (top_corner, bottom_corner, ear_top, ear_bottom, direction) in enumerate(
        ((corners[0], corners[2], points[0], points[2], -1.0), (corners[1], corners[3], points[16], points[14], 1.0))
    ):
        if half_widths[side] < 0.6 * half_widths[1 - side]:
            continue
        ear = [ear_top + [direction * 0.12 * e, -0.03 * e], ear_bottom + [direction * 0.14 * e, 0.0]]
        for start, end in ((top_corner, ear[0] + rng.normal(0, 0.02 * e, 2)), (bottom_corner, ear[1] + rng.normal(0, 0.02 * e, 2))):
            bend = (start + end) / 2 + [0.0, rng.uniform(-0.03, 0.03) * e]
            curve = chaikin(np.array([start, bend, end]), 2)
            drawn = np.zeros_like(loops)
            cv2.polylines(drawn, [np.round(curve * 16).astype(np.int32)], False, 1.0,
                          thickness=max(1, int(round(thickness))), lineType=cv2.LINE_AA, shift=4)
            reach = end - start
            along = ((cols - start[0]) * reach[0] + (rows - start[1]) * reach[1]) / max(float(reach @ reach), 1.0)
            loops = np.maximum(loops, drawn * (1 - smoothstep(0.55, 1.0, along)))
    return loops, elastic


def soften(cover: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(cover, (0, 0), sigma) if sigma > 0.3 else cover


def contact_shadow(cover: np.ndarray, e: float, rng: np.random.Generator) -> np.ndarray:
    """How much the mask darkens the skin just outside its edge (h×w in [0, 1))."""
    spread = cv2.GaussianBlur(cover, (0, 0), max(0.7, SHADOW_REACH * e))
    return (rng.uniform(*SHADOW_STRENGTH) * np.clip(2 * (spread - cover), 0, 1) * (1 - cover)).astype(np.float32)


def photo_blur(gray: np.ndarray) -> float:
    """How blurred the photo is around the face: the Gaussian sigma (pixels) a sharp image would need.

    From how much gradient energy one more pixel of blur takes away (little, when
    the photo is already soft); calibrated on sharp photos blurred by known amounts.
    """
    def energy(values: np.ndarray) -> float:
        gx = cv2.Sobel(values, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(values, cv2.CV_32F, 0, 1, ksize=3)
        return float((gx * gx + gy * gy).mean())

    sharp = energy(gray)
    if sharp < 1e-3:
        return 0.0
    kept = min(0.995, math.sqrt(energy(cv2.GaussianBlur(gray, (0, 0), 1.0)) / sharp))
    width_squared = kept * kept / (1 - kept * kept)  # a step edge's energy falls as 1/width
    return math.sqrt(max(0.0, (width_squared - BLUR_INTRINSIC) / BLUR_SLOPE))


def composite(image: np.ndarray, layers: np.ndarray, canvas: Canvas, style: str, colour: str,
              rng: np.random.Generator) -> SyntheticMask:
    """Warp the canvas layers (premultiplied RGB, coverage, shadow) back onto the photo and blend them in."""
    if canvas.supersample > 1:
        height, width = layers.shape[:2]
        layers = cv2.resize(layers, (width // canvas.supersample, height // canvas.supersample), interpolation=cv2.INTER_AREA)
    out = image.copy()
    mask = np.zeros(image.shape[:2], np.float32)
    height, width = layers.shape[:2]
    corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], np.float64) - 0.5
    to_photo = cv2.invertAffineTransform(canvas.back_matrix)
    spread = transform_points(corners, to_photo)
    x1, y1 = np.maximum(np.floor(spread.min(axis=0)).astype(int), 0)
    x2, y2 = np.minimum(np.ceil(spread.max(axis=0)).astype(int) + 1, [image.shape[1], image.shape[0]])
    if x2 <= x1 or y2 <= y1:
        return SyntheticMask(out, mask, style, colour)
    matrix = canvas.back_matrix.copy()
    matrix[:, 2] += matrix[:, :2] @ [x1, y1]
    region = cv2.warpAffine(layers, matrix, (x2 - x1, y2 - y1), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    clean = image[y1:y2, x1:x2].astype(np.float32)
    gray = clean.mean(axis=2)
    blur = photo_blur(gray)
    if blur > 0.3:
        region = cv2.GaussianBlur(region, (0, 0), blur)
    premultiplied, alpha, shadow = region[..., :3], region[..., 3], region[..., 4]
    alpha = np.where(alpha < NEGLIGIBLE, 0, np.clip(alpha, 0, 1))
    shadow = np.where(shadow < NEGLIGIBLE, 0, shadow)
    premultiplied = premultiplied * (alpha > 0)[..., None]
    grain_sigma = float(np.clip(noise_level(gray, alpha > 0.5), *GRAIN_RANGE))
    grain = rng.normal(0, grain_sigma, alpha.shape).astype(np.float32)
    blended = clean * ((1 - alpha) * (1 - shadow))[..., None] + premultiplied + (grain * alpha)[..., None]
    touched = np.maximum(alpha, shadow)
    out[y1:y2, x1:x2] = np.where(touched[..., None] > 0, np.clip(np.round(blended), 0, 255), clean).astype(np.uint8)
    mask[y1:y2, x1:x2] = touched
    return SyntheticMask(out, mask, style, colour)
