"""Donor lower-face transplant: hidden landmarks from the visible ones, the donor warped onto them, a soft mask,
and the finish in the photo's own pixels (detail, grain, a membrane joining the colours).

Plain numpy and OpenCV on 68×2 landmark arrays (dlib's iBUG layout) in the
pixels of replace mode's work crop.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.align import transform_points
from pipeline.face.colour import from_lab, to_lab, transfer_colour
from pipeline.face.landmarks import (
    BROWS, JAW, LEFT_EYE, RIGHT_EYE, eye_disagreement, face_outline, feature_mask, fill_polygon, five_from_68,
)
from pipeline.face.covering import face_frame, skin_distance

VISIBLE = BROWS + LEFT_EYE + RIGHT_EYE  # the 68-point landmarks a face mask never hides
FIVE_WEIGHTS = np.array([1.0, 1.0, 3.0, 3.0, 3.0])  # the detector's nose and mouth are the only hint below the mask
DILATE = 0.11  # the covering is grown by this fraction of the face size (the box side) down to the mouth ...
RIM_DILATE = 0.04  # ... and by this below it
GENEROUS_DEPTH = 1.1  # (eye-to-mouth distances below the eyes)
FEATHER = 0.05  # ... and softened over this fraction
JAW_INSET = 0.02  # the donor's pixels stop this far inside the estimated jaw (never its background); beyond it, inpainting
CHEEK_SMOOTH_FROM = (0.45, 0.65)  # the donor's cheeks are smoothed outwards of these |u| (eye distances), fading in ...
CHEEK_LINE_SCALES = (0.012, 0.06)  # ... at the scales between these Gaussian sigmas (fractions of the face size)
CHEEK_SPREAD = 0.08  # the donor's skin is carried outwards by a normalised blur of this sigma (fraction of the face size)
INPAINT_RADIUS = 0.05  # OpenCV inpainting radius, as a fraction of the face size
MAX_EYE_DISAGREEMENT = 0.2  # dlib's eyes further than this from the detector's (eye-to-mouth distances) are not trusted
BELOW_EYES = (-0.05, 0.01)  # the blend fades in between these depths (eye-to-mouth distances below the eyes) ...
EYE_GUARD = (0.3, 0.1)  # ... and never over the eyes: ellipses of these half-axes (eye distances) around the detector's eyes
MAX_STRETCH = 1.12  # the donor is stretched at most this much more in one direction than the other
HEAD_WIDTH = 1.05  # the donor's cheek-to-cheek width is at most this share of the target's (dlib's jaw points 1 and 15)
MAX_FACE_WIDTH = 2.45  # a face is at most this many eye distances wide at the cheekbones (the test photos' bare faces: 2.1-2.5)
SIDE_MARGIN = 0.05  # the new face and the covering's wide growth end this far (eye distances) beyond the face's sides
NECK_JAW_POINTS = (6, 10)  # the donor's neck runs down from its jaw between these points (dlib's jaw, 0..16) ...
NECK_DEPTH = 0.6  # ... fading out to this far below the chin (eye-to-mouth distances), where its pixels there are skin
NECK_SHADOW = 15.0  # ... where its shadow under the chin is at most this much darker (LAB L) than its face
DONOR_SKIN = 0.7  # a donor pixel is skin below this distance from the donor's face skin (`covering.skin_distance`)
MEMBRANE_WIDTH = 48  # the colour membrane is solved with the face this many pixels wide (eye-to-mouth distance)
MEMBRANE_STEPS = 400  # Jacobi iterations at that size
MEMBRANE_REACH = 15.0  # the membrane corrects the colour by at most this much (RGB): it joins, the colour transfer colours
MEMBRANE_LIMIT = 40.0  # border pixels this different from the new ones (RGB) are another thing (an eyelash, hair): free


def fit_affine(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares 2×3 affine taking source points onto target points."""
    rows = np.hstack([source, np.ones((len(source), 1))]) * np.sqrt(weights)[:, None]
    solution, *_ = np.linalg.lstsq(rows, target * np.sqrt(weights)[:, None], rcond=None)
    return solution.T


def fit_donor_shape(donor_points: np.ndarray, target_points: np.ndarray, target_five: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The donor's 68-point shape fitted to what is visible of the target.

    When dlib's eyes disagree with the detector's (dlib lost the face under the
    mask), only the detector's five points are used.

    Args:
        donor_points: the donor's 68 landmarks in donor pixels.
        target_points: dlib's 68 landmarks of the target; only the eyes and brows are used.
        target_five: the detector's five landmarks of the target (it guesses nose and mouth through masks).

    Returns:
        (2×3 affine donor pixels -> target pixels, the estimated 68 target landmarks)
    """
    donor_points = np.asarray(donor_points, dtype=np.float64)
    source = np.concatenate([donor_points[VISIBLE], five_from_68(donor_points)])
    target = np.concatenate([np.asarray(target_points, dtype=np.float64)[VISIBLE], np.asarray(target_five, dtype=np.float64)])
    trusted = eye_disagreement(target_points, target_five) <= MAX_EYE_DISAGREEMENT
    weights = np.concatenate([np.full(len(VISIBLE), 1.0 if trusted else 0.0), FIVE_WEIGHTS])
    affine = fit_affine(source, target, weights)
    return affine, transform_points(donor_points, affine)


def limit_to_head(affine: np.ndarray, donor_points: np.ndarray, target_points: np.ndarray, target_five: np.ndarray) -> np.ndarray:
    """The donor's affine kept to a face's proportions and no wider than the target's head.

    The detector's nose and mouth under a mask are guesses: they may stretch the
    donor. The stretch is limited to `MAX_STRETCH`, and where dlib is trusted the
    donor's cheek-to-cheek width to `HEAD_WIDTH` of the target's; both about the
    eyes, so the eyes stay where they are.
    """
    donor_points = np.asarray(donor_points, dtype=np.float64)
    u, singular, vt = np.linalg.svd(affine[:, :2])
    singular = np.maximum(singular, singular[0] / MAX_STRETCH)
    linear = u @ np.diag(singular) @ vt
    if eye_disagreement(target_points, target_five) <= MAX_EYE_DISAGREEMENT:
        target_width = float(np.hypot(*(np.asarray(target_points)[15] - np.asarray(target_points)[1])))
        donor_width = float(np.hypot(*(linear @ (donor_points[15] - donor_points[1]))))
        if target_width > 0 and donor_width > HEAD_WIDTH * target_width:
            linear = linear * (HEAD_WIDTH * target_width / donor_width)
    eyes = donor_points[LEFT_EYE + RIGHT_EYE].mean(axis=0)
    placed = affine[:, :2] @ eyes + affine[:, 2]
    return np.hstack([linear, (placed - linear @ eyes)[:, None]])


def render_lower_face(
    donor_image: np.ndarray, donor_points: np.ndarray, crop: np.ndarray, points: np.ndarray,
    five: np.ndarray, visible_skin: np.ndarray, covered: np.ndarray, face_px: float, sides: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """The donor warped onto the target's estimated landmarks, with the target's colour and light.

    Inside the estimated jaw the pixels are the donor's; outside it (a mask's
    sides and the part under the chin) the donor shows only its background, so
    there the target itself is inpainted from around the covering.

    Args:
        covered: h×w covering of the target, in the crop's pixels.
        sides: the person's face edges at the cheekbones (`face_sides`).

    Returns:
        (h×w×3 uint8 new pixels over the crop, the estimated 68 landmarks)
    """
    affine, _ = fit_donor_shape(donor_points, points, five)
    affine = limit_to_head(affine, donor_points, points, five)
    height, width = crop.shape[:2]
    warped, estimated = within_sides(donor_image, donor_points, affine, five, sides, (height, width))
    face_region = fill_polygon((height, width), face_outline(estimated))
    donor_skin = face_region * (1 - feature_mask((height, width), estimated, grow_px=0.03 * face_px))
    coloured = smoothed_cheeks(transfer_colour(warped, crop, donor_skin, visible_skin * face_region, face_px), five, face_px)
    hole = cv2.dilate(grown_covering(covered, five, face_px, sides).astype(np.uint8), disc(FEATHER * face_px))  # as far as the blend reaches
    filled = cv2.inpaint(crop, hole, max(2.0, INPAINT_RADIUS * face_px), cv2.INPAINT_TELEA)
    jaw = donor_face_region((height, width), estimated, face_px)[..., None]
    neck = donor_neck_region(coloured, estimated, donor_skin_pixels(coloured, donor_skin), face_px)[..., None]
    coloured = with_lighter_shadow(coloured, donor_skin, neck[..., 0])
    # Where the person's own face (dlib's jaw line, which follows a mask's outline, up to the face's sides) is wider
    # than the donor's, its cheeks are the donor's skin carried outwards, not the background inpainted in.
    cheeks = (own_face_region((height, width), points, five, face_px) * between_sides((height, width), five, sides, face_px))[..., None]
    sigma = max(1.0, CHEEK_SPREAD * face_px)
    spread = cv2.GaussianBlur(coloured.astype(np.float32) * jaw, (0, 0), sigma) / np.maximum(cv2.GaussianBlur(jaw, (0, 0), sigma)[..., None], 1e-3)
    outside = spread * cheeks + filled * (1 - cheeks)
    donor_pixels = np.maximum(jaw, neck)
    new_pixels = coloured * donor_pixels + outside * (1 - donor_pixels)
    return np.clip(np.round(new_pixels), 0, 255).astype(np.uint8), estimated


def face_sides(points: np.ndarray, five: np.ndarray) -> tuple[float, float]:
    """The person's face edges at the cheekbones, as `face_frame` u (eye distances across the face, lower first).

    dlib's jaw points 1 and 15, which a wide mask's outline pulls outwards, so
    together at most `MAX_FACE_WIDTH` wide (both moved in alike). The head above
    the mask is never wider, and neither is the new lower face. Where dlib lost
    the face they are unknown (infinite): a guess centred on the eyes cut a
    turned face's far rim off the blend, and the mask's rim stayed.
    """
    if eye_disagreement(points, five) > MAX_EYE_DISAGREEMENT:
        return -np.inf, np.inf
    left, right = sorted(across_face(np.asarray(points)[[1, 15]], five))
    half = min(right - left, MAX_FACE_WIDTH) / 2
    return (left + right) / 2 - half, (left + right) / 2 + half


def across_face(points: np.ndarray, five: np.ndarray) -> np.ndarray:
    """The `face_frame` u of each point (n×2 crop pixels): eye distances across the face from the eyes' mid-point."""
    origin, gradient = across_axis(five)
    return origin + np.asarray(points, dtype=np.float64) @ gradient


def across_axis(five: np.ndarray) -> tuple[float, np.ndarray]:
    """`face_frame`'s u as an affine function of crop pixels (x, y): u = origin + (x, y) · gradient."""
    u = face_frame((2, 2), five).u
    return float(u[0, 0]), np.array([u[0, 1] - u[0, 0], u[1, 0] - u[0, 0]])


def within_sides(donor_image: np.ndarray, donor_points: np.ndarray, affine: np.ndarray, five: np.ndarray,
                 sides: tuple[float, float], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The donor warped by `affine`, each half of its face narrowed towards the eyes' mid-line until its cheekbones
    (jaw points 1 and 15) lie within the person's `sides`: a frontal donor on a turned head, or a wide one, had its
    cheek painted over the hair and shirt beside the face.

    Returns:
        (h×w×3 the warped donor, its 68 landmarks in the crop)
    """
    placed = transform_points(donor_points, affine)
    u_left, u_right = sorted(across_face(placed[[1, 15]], five))
    factors = (min(1.0, sides[0] / u_left) if u_left < 0 else 1.0, min(1.0, sides[1] / u_right) if u_right > 0 else 1.0)
    if factors == (1.0, 1.0):
        return cv2.warpAffine(donor_image, affine, shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), placed
    _, gradient = across_axis(five)
    step = gradient / (gradient @ gradient)  # crop pixels across the face per unit of u
    u = face_frame(shape, five).u
    shift = u / np.where(u < 0, factors[0], factors[1]) - u  # how far across each pixel's donor pixel lies
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    xs, ys = xs + shift * step[0], ys + shift * step[1]
    inverse = cv2.invertAffineTransform(affine)
    map_x = (inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]).astype(np.float32)
    map_y = (inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]).astype(np.float32)
    warped = cv2.remap(donor_image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    u_points = across_face(placed, five)
    moved = placed + ((np.where(u_points < 0, factors[0], factors[1]) - 1) * u_points)[:, None] * step
    return warped, moved


def between_sides(shape: tuple[int, int], five: np.ndarray, sides: tuple[float, float], face_px: float) -> np.ndarray:
    """Soft h×w mask of the crop between the face's sides (`face_sides`), with `SIDE_MARGIN` beyond them."""
    frame = face_frame(shape, five)
    inside = ((frame.u > sides[0] - SIDE_MARGIN) & (frame.u < sides[1] + SIDE_MARGIN)).astype(np.float32)
    return cv2.GaussianBlur(inside, (0, 0), max(1.0, FEATHER * face_px / 2))


def smoothed_cheeks(donor: np.ndarray, five: np.ndarray, face_px: float) -> np.ndarray:
    """The donor with the mid-scale lines of its outer cheeks taken out (their fine grain and broad shading kept).

    The pool's composite people carry the seams where their parts were joined as
    dark lines down the outer cheeks, and sunken cheeks read as lines too: on a
    young face they looked drawn on. Real outer cheeks are smooth at that scale.
    """
    u = np.abs(face_frame(donor.shape[:2], five).u)
    weight = np.clip((u - CHEEK_SMOOTH_FROM[0]) / (CHEEK_SMOOTH_FROM[1] - CHEEK_SMOOTH_FROM[0]), 0.0, 1.0)[..., None]
    image = donor.astype(np.float32)
    fine, broad = (cv2.GaussianBlur(image, (0, 0), max(0.5, sigma * face_px)) for sigma in CHEEK_LINE_SCALES)
    return np.clip(np.round(image - weight * (fine - broad)), 0, 255).astype(np.uint8)


def own_face_region(shape: tuple[int, int], points: np.ndarray, five: np.ndarray, face_px: float) -> np.ndarray:
    """Soft h×w mask of the target's face from dlib's jaw line to its brows; empty where dlib lost the face."""
    if eye_disagreement(points, five) > MAX_EYE_DISAGREEMENT:
        return np.zeros(shape, np.float32)
    region = fill_polygon(shape, np.concatenate([np.asarray(points)[JAW], np.asarray(points)[VISIBLE]]))
    return cv2.GaussianBlur(region, (0, 0), max(1.0, FEATHER * face_px / 2))


def donor_face_region(shape: tuple[int, int], estimated: np.ndarray, face_px: float) -> np.ndarray:
    """Soft h×w mask of the donor's own face (jaw line up to the brows), slightly inset, so none of its background shows."""
    jaw = cv2.erode(fill_polygon(shape, np.concatenate([estimated[JAW], estimated[VISIBLE]])), disc(JAW_INSET * face_px))
    return cv2.GaussianBlur(jaw, (0, 0), max(1.0, FEATHER * face_px / 2))


def donor_neck_region(donor: np.ndarray, estimated: np.ndarray, skin: np.ndarray, face_px: float) -> np.ndarray:
    """Soft h×w mask of the donor's neck under its chin, where the warped donor shows skin (`skin`, bool; not its
    collar or hair), fading out with depth: under a mask's lower edge the jaw runs on into a neck with the chin's
    shadow, never into a smear, and the neck gives way to the photo's own collar below it."""
    shape = donor.shape[:2]
    eyes = (estimated[LEFT_EYE].mean(axis=0) + estimated[RIGHT_EYE].mean(axis=0)) / 2
    down = (estimated[48] + estimated[54]) / 2 - eyes  # eyes to mouth
    first, last = NECK_JAW_POINTS
    left, right = estimated[JAW[first]], estimated[JAW[last]]
    below = fill_polygon(shape, np.concatenate([estimated[JAW[first] : JAW[last] + 1], [right + NECK_DEPTH * down, left + NECK_DEPTH * down]]))
    neck = cv2.morphologyEx((below * skin).astype(np.uint8), cv2.MORPH_OPEN, disc(JAW_INSET * face_px)).astype(np.float32)
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    length = max(float(np.hypot(*down)), 1e-3)
    depth = ((xs - estimated[JAW[8], 0]) * down[0] + (ys - estimated[JAW[8], 1]) * down[1]) / length**2  # below the chin
    fade = np.clip(1.0 - depth / NECK_DEPTH, 0.0, 1.0).astype(np.float32)
    return cv2.GaussianBlur(neck, (0, 0), max(1.0, FEATHER * face_px / 2)) * fade


def with_lighter_shadow(donor: np.ndarray, donor_skin: np.ndarray, neck: np.ndarray) -> np.ndarray:
    """The donor with the shadow under its chin (`neck`, soft h×w) at most `NECK_SHADOW` LAB L darker than its face's
    skin: a studio's deep shadow there read as a dark beard on small faces in flat light."""
    lab = to_lab(donor)
    floor = float(np.median(lab[..., 0][donor_skin > 0.5])) - NECK_SHADOW if (donor_skin > 0.5).any() else 0.0
    lifted = np.maximum(lab[..., 0], floor)
    lab[..., 0] = lab[..., 0] + neck * (lifted - lab[..., 0])
    return from_lab(lab)


def donor_skin_pixels(donor: np.ndarray, donor_skin: np.ndarray) -> np.ndarray:
    """Bool h×w: where the donor shows skin like its face's (in light or shade), not hair, collar or background."""
    return skin_distance(to_lab(donor), donor_skin > 0.5, light_and_shade=True) < DONOR_SKIN


def disc(radius: float) -> np.ndarray:
    """An elliptic structuring element of at least radius 1."""
    reach = max(1, int(round(radius)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))


def filled_covering(covered: np.ndarray) -> np.ndarray:
    """The covering with its notches filled (its convex hull): a mask's shaded side or rim that the colour test
    missed lies inside the hull of what it found."""
    points = cv2.findNonZero((covered > 0.2).astype(np.uint8))
    if points is None:
        return covered
    return np.maximum(covered, fill_polygon(covered.shape, points.reshape(-1, 2)))


def grown_covering(covered: np.ndarray, five: np.ndarray, face_px: float, sides: tuple[float, float]) -> np.ndarray:
    """The covering grown over its rims: by `DILATE` down to the mouth and within the face's sides (`face_sides`:
    its top edge and the cheek rims, which the colour test half misses), by `RIM_DILATE` below it and beside the
    face (so the neck, collar, hair and background are not smeared), h×w float32 0/1."""
    covered = (covered > 0.2).astype(np.float32)
    frame = face_frame(covered.shape, five)
    upper = (frame.v < GENEROUS_DEPTH) & (frame.u > sides[0] - SIDE_MARGIN) & (frame.u < sides[1] + SIDE_MARGIN)
    wide = cv2.dilate(covered, disc(DILATE * face_px))
    narrow = cv2.dilate(covered, disc(RIM_DILATE * face_px))
    return np.where(upper, wide, narrow)


def unmask_blend_mask(covered: np.ndarray, five: np.ndarray, face_px: float, sides: tuple[float, float], photo_edges: tuple[bool, bool, bool, bool] = (False,) * 4) -> np.ndarray:
    """Where the new pixels go: the covering, grown (`grown_covering`) and feathered, below the eyes and off them.

    The covering is grown before it is feathered, so its top edge and rims are
    fully under the new pixels, up to the lower lids. The mask keeps off the
    crop's sides (a paste never ends in a hard edge), except those that are the
    photo's own edges (`photo_edges`: left, top, right, bottom), where nothing
    lies beyond and the mask must reach them, or a strip of it stays.
    """
    shape = covered.shape
    depth = face_frame(shape, five).v
    below_eyes = np.clip((depth - BELOW_EYES[0]) / (BELOW_EYES[1] - BELOW_EYES[0]), 0.0, 1.0).astype(np.float32)
    feathered = cv2.GaussianBlur(grown_covering(covered, five, face_px, sides), (0, 0), max(1.0, FEATHER * face_px))
    mask = feathered * below_eyes * (1 - eye_guard(shape, five))
    border = np.zeros(shape, np.float32)
    edge = max(2, int(round(DILATE * face_px)))
    left, top, right, bottom = (0 if at_photo_edge else edge for at_photo_edge in photo_edges)
    border[top : shape[0] - bottom, left : shape[1] - right] = 1.0
    return np.minimum(mask, border).clip(0, 1).astype(np.float32)


def eye_guard(shape: tuple[int, int], five: np.ndarray) -> np.ndarray:
    """Soft h×w mask of the eyes (ellipses around the detector's eye points), which the blend never covers."""
    five = np.asarray(five, dtype=np.float64)
    axis = five[1] - five[0]
    distance = max(float(np.hypot(*axis)), 1.0)
    angle = float(np.degrees(np.arctan2(axis[1], axis[0])))
    guard = np.zeros(shape, np.float32)
    for eye in five[:2]:
        axes = (max(1, int(round(EYE_GUARD[0] * distance))), max(1, int(round(EYE_GUARD[1] * distance))))
        cv2.ellipse(guard, (int(round(eye[0])), int(round(eye[1]))), axes, angle, 0, 360, 1.0, thickness=-1)
    return cv2.GaussianBlur(guard, (0, 0), max(0.7, 0.04 * distance))


def membrane_join(base: np.ndarray, new: np.ndarray, mask: np.ndarray, masked: np.ndarray, eye_to_mouth_px: float) -> np.ndarray:
    """Gradient-domain blending: `new` plus the smooth offset (a membrane, the solution of Laplace's equation inside
    the mask) that meets `base` all along the mask's border; the mask then feathers it over `base`.

    So the new lower face keeps its own detail while its colour and light run
    continuously into the person's own skin, neck and background. Border pixels
    far from the new pixels (eyelashes, hair crossing the border) are left free
    instead of pulling the membrane to their colour. Solved at a small scale
    (the membrane is smooth), then brought up.

    Args:
        base, new: h×w×3 uint8 in the same pixels; mask: h×w float in [0, 1].
        masked: h×w, above 0.5 where the face mask may still be (the grown covering): never a border to meet, so
            its rim by the eyes, which the blend leaves, does not pale the new face.
    """
    height, width = mask.shape
    factor = min(1.0, MEMBRANE_WIDTH / max(eye_to_mouth_px, 1.0))
    small = (max(4, round(width * factor)), max(4, round(height * factor)))
    base_s = cv2.resize(base.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    new_s = cv2.resize(new.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    inside = cv2.resize(mask, small, interpolation=cv2.INTER_AREA) > 0.02
    ring = cv2.dilate(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~inside
    difference = base_s - new_s
    masked_s = cv2.resize(masked.astype(np.float32), small, interpolation=cv2.INTER_AREA) > 0.5
    fixed = ring & ~masked_s & (np.abs(difference).max(axis=-1) <= MEMBRANE_LIMIT)
    if not fixed.any():
        offset = np.zeros_like(difference)
    else:
        known = (inside | fixed).astype(np.float32)
        offset = np.where(fixed[..., None], difference, 0.0).astype(np.float32)
        seed = fixed.astype(np.float32)  # start from the border's mean colour spread inwards, not from zero
        offset_init = cv2.GaussianBlur(offset, (0, 0), max(small) / 4) / np.maximum(cv2.GaussianBlur(seed, (0, 0), max(small) / 4), 1e-4)[..., None]
        offset = np.where(fixed[..., None], difference, offset_init).astype(np.float32)
        kernel = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.float32)
        weight = np.maximum(cv2.filter2D(known, -1, kernel, borderType=cv2.BORDER_CONSTANT), 1e-6)[..., None]
        for _ in range(MEMBRANE_STEPS):
            average = cv2.filter2D(offset * known[..., None], -1, kernel, borderType=cv2.BORDER_CONSTANT) / weight
            offset = np.where(inside[..., None], average, offset)
        offset = np.where(inside[..., None], offset, 0.0)
    offset = cv2.resize(np.clip(offset, -MEMBRANE_REACH, MEMBRANE_REACH), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(np.round(new.astype(np.float32) + offset), 0, 255).astype(np.uint8)
