"""Realism of changed faces: does each face a mode changes measure like the real, unchanged faces of the test photos?

Every photo in tests/data is changed with nothing kept. For every face the mode
changes, measured at full size on the result, in the face's own coordinates
(`covering.face_frame`):

- colour: ΔE (CIE76, LAB) between the median skin of the changed region and the
  median of the person's own skin where masks never reach (between the eyes, the
  lower forehead), or of the rest of the face where the mode changed that too
  (both without their darkest quarter and brightest tenth: eyes, brows, nostrils,
  lips, highlights, hair), never the face mask a masked face keeps;
- seam: the mean ΔE step across the changed region's edge (the blend mask at
  one half), between the mean colour just inside and just outside each edge pixel,
  less the edge beside a face mask the person keeps (that step is the mask's own);
- sharpness: mean |Laplacian| of the changed region over that of the rest of the face (its mask left out);

  the pixels other faces' changes reached (a neighbour's mosaic, another new face) are left out of all three: they
  are neither this person's skin nor this face's seam;
- landmarks: dlib's 68 points fitted on the result, their RMS distance (in eye
  distances, after a similarity fit) from the mean shape of the real faces.

The natural range of each measure is taken from the real faces: every face of the
test photos that wears no mask, at least `MIN_FACE_PX` wide and not turned to
profile, measured the same way, with the very region the changed face was given
laid on it in face coordinates. So each changed face has its own range: a region
above a face mask is compared with the same band of real faces, a whole-face
region with whole faces. A face whose mask stays (replace mode) is also compared
with the real masked faces, above their own masks: most masked faces are in crowd
photos, softer and lower in contrast than the bare portraits. The range is their central 95% (2.5th to 97.5th
percentile); for colour, seam and landmarks only the upper end counts (less is
never less real). In replace mode each face's original is measured with its result's
region too: the count of originals inside their ranges shows the bench's own false alarms,
the next count the faces the mode made less real than they were, on some measure, and the
last the changed faces inside ranges stretched to take in their own original's value. It also
counts the faces at least `WIDE_FACE_PX` wide that the mode changed rather than blurred.

    .venv/bin/python bench/realism.py [--mode unmask --mode replace] [--save /tmp/realism]

`--save` writes each changed face, original beside result, at twice full size, as PNG.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not bench/: its queue.py would shadow the stdlib

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from pipeline import analysis  # noqa: E402
from pipeline.analysis import change_faces_reported, find_faces  # noqa: E402
from pipeline.config import PipelineSettings  # noqa: E402
from pipeline.face.crop import MIN_FACE_PX  # noqa: E402
from pipeline.face.colour import to_lab  # noqa: E402
from pipeline.face.landmarks import LEFT_EYE, RIGHT_EYE, dlib_box_from_five, eye_ratio, find_landmarks68  # noqa: E402
from pipeline.face.covering import FaceFrame, covering_in_crop, face_frame, find_covering, reference_skin  # noqa: E402
from pipeline.regions import face_bounds, face_scale  # noqa: E402
from tests.helpers import DATA, cached_models, photo_rgb  # noqa: E402

MEASURES = ("colour", "seam", "sharpness", "landmarks")
UPPER_ONLY = {"colour", "seam", "landmarks"}
MIN_EYE_RATIO = 0.8  # five-point eye distance / eye-to-mouth below this is a profile view (as unmask mode)
GRID_U, GRID_V, GRID_STEP = (-1.8, 1.8), (-1.4, 2.6), 0.02  # the face-coordinate grid regions are compared on
FACE_AREA = (1.15, 0.45, 1.35)  # the face: an ellipse in (u, v), half-width, centre v, half-height
WIDE_FACE_PX = 40  # faces at least this wide should be changed, not blurred (issue 14's line)
STEP_RADIUS = 0.08  # the seam's colours are averaged this far either side of the edge (eye-to-mouth distances)
SKIN_PERCENTILES = (25, 90)  # a region's skin: its pixels between these lightness percentiles
MIN_CHANGE = 0.05  # a pixel another face's paste mask reaches above this is that face's change, not this one's


@dataclass
class FaceView:
    """One face at full size: the crop of the photo around it and its face coordinates."""

    original: np.ndarray  # h×w×3 uint8
    shown: np.ndarray  # h×w×3 uint8: the result (the original itself for real faces)
    u: np.ndarray
    v: np.ndarray
    eye_to_mouth: float
    bounds: tuple[int, int, int, int]


def view(original: np.ndarray, shown: np.ndarray, face) -> FaceView:
    bounds = face_bounds(face, (original.shape[1], original.shape[0]), margin=0.6 * face_scale(face))
    x1, y1, x2, y2 = bounds
    five = np.asarray(face.landmarks, dtype=np.float64) - (x1, y1)
    frame = face_frame((y2 - y1, x2 - x1), five)
    return FaceView(original[y1:y2, x1:x2], shown[y1:y2, x1:x2], frame.u, frame.v, frame.eye_to_mouth_px, bounds)


def face_area(face: FaceView) -> np.ndarray:
    width, centre, height = FACE_AREA
    return (face.u / width) ** 2 + ((face.v - centre) / height) ** 2 < 1.0


def to_grid(region: np.ndarray, face: FaceView) -> np.ndarray:
    """A region of the face's crop resampled onto the face-coordinate grid (by nearest crop pixel)."""
    us = np.arange(*GRID_U, GRID_STEP)
    vs = np.arange(*GRID_V, GRID_STEP)
    grid_u, grid_v = np.meshgrid(us, vs)
    # Least squares from (u, v) to crop pixels: the frame is affine in both directions.
    ys, xs = np.mgrid[0 : region.shape[0], 0 : region.shape[1]]
    design = np.stack([face.u.ravel(), face.v.ravel(), np.ones(face.u.size)], axis=1)
    to_x, *_ = np.linalg.lstsq(design, xs.ravel().astype(np.float64), rcond=None)
    to_y, *_ = np.linalg.lstsq(design, ys.ravel().astype(np.float64), rcond=None)
    map_x = (to_x[0] * grid_u + to_x[1] * grid_v + to_x[2]).astype(np.float32)
    map_y = (to_y[0] * grid_u + to_y[1] * grid_v + to_y[2]).astype(np.float32)
    return cv2.remap(region.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderValue=0.0)


def from_grid(grid: np.ndarray, face: FaceView) -> np.ndarray:
    """The grid's region laid on a face's crop, as a bool mask."""
    map_x = ((face.u - GRID_U[0]) / GRID_STEP).astype(np.float32)
    map_y = ((face.v - GRID_V[0]) / GRID_STEP).astype(np.float32)
    return cv2.remap(grid, map_x, map_y, cv2.INTER_LINEAR, borderValue=0.0) >= 0.5


def skin_lab(lab: np.ndarray, region: np.ndarray) -> np.ndarray | None:
    values = lab[region]
    if len(values) < 16:
        return None
    low, high = np.percentile(values[:, 0], SKIN_PERCENTILES)
    return np.median(values[(values[:, 0] >= low) & (values[:, 0] <= high)], axis=0)


def measure(face: FaceView, region: np.ndarray, excluded: np.ndarray | None = None) -> dict[str, float]:
    """Colour, seam and sharpness of `region` (bool, over the face's crop) against the rest of the face, less
    `excluded` (bool, or None): the face mask the person wears, which is not their skin, and what other faces'
    changes reached."""
    lab = to_lab(face.shown)
    area = face_area(face)
    reach = max(2, int(round(STEP_RADIUS * face.eye_to_mouth)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    inside = region & area
    rest = area & ~cv2.dilate(region.astype(np.uint8), disc).astype(bool)
    if excluded is not None:
        rest &= ~excluded
    # The person's own skin: where masks never reach (between the eyes, the lower forehead) when the mode left it,
    # else the rest of the face (replace mode changes the whole face).
    frame = FaceFrame(face.u, face.v, face.eye_to_mouth)
    own_region = reference_skin(frame) & rest
    new, own = skin_lab(lab, inside), skin_lab(lab, own_region if own_region.sum() >= 16 else rest)
    colour = float(np.linalg.norm(new - own)) if new is not None and own is not None else np.nan
    # Seam: on each edge pixel, the mean colour within `reach` inside the region against the mean outside it.
    region_f = region.astype(np.float32)
    edge = (region & ~cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)) & area
    if excluded is not None:  # beside the face mask the step is the mask's own edge, the original's too
        edge &= ~cv2.dilate(excluded.astype(np.uint8), disc).astype(bool)
    sigma = reach / 2
    means = []
    for weights in (region_f, 1.0 - region_f):
        numerator = cv2.GaussianBlur(lab * weights[..., None], (0, 0), sigma)
        means.append(numerator / np.maximum(cv2.GaussianBlur(weights, (0, 0), sigma), 1e-3)[..., None])
    steps = np.linalg.norm(means[0] - means[1], axis=-1)[edge]
    seam = float(steps.mean()) if steps.size else np.nan
    gray = cv2.cvtColor(face.shown, cv2.COLOR_RGB2GRAY).astype(np.float32)
    laplacian = np.abs(cv2.Laplacian(gray, cv2.CV_32F))
    core = cv2.erode(inside.astype(np.uint8), disc).astype(bool)  # away from the edge
    sharp = laplacian[core].mean() / max(laplacian[rest].mean(), 1e-3) if core.sum() >= 16 and rest.sum() >= 16 else np.nan
    return {"colour": colour, "seam": seam, "sharpness": float(sharp)}


def worn_mask(image: np.ndarray, face, seen: FaceView) -> np.ndarray:
    """The face mask's pixels (the toolkit's mask finder) over the face's crop, as a bool mask."""
    x1, y1, _, _ = seen.bounds
    to_crop = np.array([[1.0, 0.0, -x1], [0.0, 1.0, -y1]])
    return covering_in_crop(find_covering(image, face.landmarks), to_crop, seen.shown.shape[:2]) > 0.2


def normalised_shape(points: np.ndarray) -> np.ndarray:
    """68 points moved to their centroid and scaled to one eye distance."""
    eyes = np.linalg.norm(points[LEFT_EYE].mean(axis=0) - points[RIGHT_EYE].mean(axis=0))
    return (points - points.mean(axis=0)) / max(eyes, 1e-6)


def shape_distance(points: np.ndarray, mean_shape: np.ndarray) -> float:
    """RMS distance (eye distances) of a shape from the mean after the best rotation and scale."""
    shape = normalised_shape(points)
    # Similarity Procrustes: as complex numbers, the best factor is <mean, shape> / <shape, shape>.
    z, w = shape[:, 0] + 1j * shape[:, 1], mean_shape[:, 0] + 1j * mean_shape[:, 1]
    fitted = z * (np.vdot(z, w) / np.vdot(z, z))
    return float(np.sqrt(np.mean(np.abs(fitted - w) ** 2)))


@dataclass
class Real:
    """An unchanged face the ranges are taken from."""

    face: FaceView
    points: np.ndarray  # dlib's 68
    covered: np.ndarray | None  # its face mask (bool over its crop), None on a bare face


@dataclass
class Changed:
    photo: str
    number: int
    face: FaceView
    region: np.ndarray  # bool over the face's crop
    keeps_mask: bool  # a face mask stays, and the region is the face above it
    points: np.ndarray  # dlib's 68 on the result
    values: dict
    original: dict | None  # the unchanged face measured with the same region (replace mode only)
    original_points: np.ndarray | None


def recorded_paste_masks(masks: list) -> None:
    """Wrap the pipeline's paste-back so each pasted mask is kept, in photo pixels."""
    original = analysis.paste_back

    def recording(image, output, protect=None):
        inverse = cv2.invertAffineTransform(output.matrix)
        masks.append(cv2.warpAffine(output.mask, inverse, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR, borderValue=0.0))
        return original(image, output, protect)

    analysis.paste_back = recording


def run_mode(mode: str, photos: list[str], models, predictor, masks: list, save: Path | None):
    """Changed faces, real faces (the frontal ones of every photo, bare or masked) and report counts for one mode."""
    changed, real, counts = [], [], {"changed": 0, "blurred": 0, "left": 0, "wide": 0, "wide_changed": 0}
    for name in photos:
        image = photo_rgb(name)
        faces, _ = find_faces(image, models)
        masks.clear()
        result, reports = change_faces_reported(image, faces, set(), mode, models)
        order = sorted(faces, key=lambda f: f.width * f.height)  # the order change_faces_reported pastes in
        pasted = dict(zip((f.number for f in order), masks))
        by_number = {r.number: r for r in reports}
        for face in faces:
            report = by_number.get(face.number)
            frontal = face_scale(face) >= MIN_FACE_PX and eye_ratio(np.asarray(face.landmarks)) >= MIN_EYE_RATIO
            unchanged = view(image, image, face)
            covered = worn_mask(image, face, unchanged) if face.wears_mask else None  # the same pixels on the result
            if face.mask is not None and frontal:
                real.append(Real(unchanged, find_landmarks68(predictor, image, dlib_box_from_five(face.landmarks)), covered))
            if report is None:
                continue
            if face.width >= WIDE_FACE_PX and report.mode in (mode, "blur"):
                counts["wide"] += 1
                counts["wide_changed"] += report.mode == mode
            if report.mode == "blur":
                counts["blurred"] += 1
            elif report.mode == mode:
                counts["changed"] += 1
                seen = view(image, result, face)
                x1, y1, x2, y2 = seen.bounds
                region = pasted[face.number][y1:y2, x1:x2] >= 0.5
                points = find_landmarks68(predictor, result, dlib_box_from_five(face.landmarks))
                others = np.max([m for n, m in pasted.items() if n != face.number] or [np.zeros(image.shape[:2])], axis=0)
                excluded = others[y1:y2, x1:x2] > MIN_CHANGE
                if covered is not None:
                    excluded |= covered
                original, original_points = None, None
                if mode == "replace":  # unmask's region on the original is the face mask itself
                    original = measure(unchanged, region, excluded)
                    original_points = find_landmarks68(predictor, image, dlib_box_from_five(face.landmarks))
                keeps_mask = mode == "replace" and face.wears_mask
                changed.append(Changed(
                    name, face.number, seen, region, keeps_mask, points, measure(seen, region, excluded), original, original_points
                ))
                if save is not None:
                    pair = np.hstack([seen.original, seen.shown])
                    pair = cv2.resize(pair, (2 * pair.shape[1], 2 * pair.shape[0]), interpolation=cv2.INTER_NEAREST)
                    Image.fromarray(pair).save(save / f"{mode}_{Path(name).stem}_face{face.number}.png")
            elif not report.reason.startswith("no mask"):
                counts["left"] += 1
    return changed, real, counts


def real_values_of(real: Real, grid: np.ndarray, mean_shape: np.ndarray) -> dict[str, float]:
    """A real face measured with a changed face's region (from the grid), less its own face mask."""
    region = from_grid(grid, real.face)
    if real.covered is not None:
        region &= ~real.covered
    return measure(real.face, region, real.covered) | {"landmarks": shape_distance(real.points, mean_shape)}


def real_range(values: list[dict]) -> dict[str, tuple[float, float]]:
    """Each measure's natural range over the real faces' values: the central 95%, from 0 where less is never less real."""
    ranges = {}
    for name in MEASURES:
        column = np.array([v[name] for v in values], dtype=float)
        column = column[np.isfinite(column)]
        low, high = np.percentile(column, (2.5, 97.5))
        ranges[name] = (0.0 if name in UPPER_ONLY else low, high)
    return ranges


def inside(values: dict, ranges: dict) -> dict[str, bool]:
    return {n: bool(np.isfinite(values[n]) and ranges[n][0] <= values[n] <= ranges[n][1]) for n in MEASURES}


def report(mode: str, changed: list[Changed], real: list, counts: dict) -> None:
    print(f"\n== {mode}: {counts['changed']} faces changed, {counts['blurred']} blurred instead, {counts['left']} left unchanged (not for want of a mask)")
    print(f"  faces {WIDE_FACE_PX} px or wider (detector box): {counts['wide_changed']}/{counts['wide']} changed, not blurred")
    if not changed:
        return
    bare = [r for r in real if r.covered is None]
    mean_shape = np.mean([normalised_shape(r.points) for r in bare], axis=0)
    masked_too = f" (and {len(real) - len(bare)} masked ones for faces whose mask stays)" if any(c.keeps_mask for c in changed) else ""
    print(f"real-face ranges from {len(bare)} bare faces{masked_too}, each measured with every changed face's region")
    print(f"  {'photo':34s} face  {'colour':>7s} {'seam':>6s} {'sharp':>6s} {'lmk':>6s}  outside  (original outside)  [outside, own original taken in]  range")
    passes, passes_with_own, originals, originals_inside, broken = [], [], 0, 0, 0
    for c in changed:
        grid = to_grid(c.region, c.face)
        references = real if c.keeps_mask else bare
        real_values = [real_values_of(r, grid, mean_shape) for r in references]
        ranges = real_range(real_values)
        c.values["landmarks"] = shape_distance(c.points, mean_shape)
        flags = inside(c.values, ranges)
        passes.append(flags)
        line = f"  {c.photo:34s} {c.number:4d}  " + " ".join(f"{c.values[n]:6.2f}" for n in MEASURES) + f"  {outside_names(flags)}"
        if c.original is not None:
            c.original["landmarks"] = shape_distance(c.original_points, mean_shape)
            original_flags = inside(c.original, ranges)
            originals += 1
            originals_inside += all(original_flags.values())
            broken += any(original_flags[n] and not flags[n] for n in MEASURES)
            passes_with_own.append(inside(c.values, widened(ranges, c.original)))
            line += f"  ({outside_names(original_flags)})  [{outside_names(passes_with_own[-1])}]"
        print(line + "  " + " ".join(f"{lo:.2f}-{hi:.2f}" for lo, hi in ranges.values()))
    for name in MEASURES:
        print(f"  inside on {name:10s} {sum(p[name] for p in passes)}/{len(passes)}")
    everywhere = sum(all(p.values()) for p in passes)
    print(f"  {mode}: {everywhere}/{len(passes)} changed faces ({everywhere / len(passes):.0%}) inside the real-face range on every measure")
    if originals:
        print(f"  their originals, measured with the same regions: {originals_inside}/{originals} inside;"
              f" {broken} changed faces are outside on a measure their original is inside on")
        with_own = sum(all(p.values()) for p in passes_with_own)
        print(f"  {mode}: {with_own}/{len(passes_with_own)} changed faces ({with_own / len(passes_with_own):.0%}) inside on every"
              " measure when each range also takes in the face's own original")


def widened(ranges: dict, original: dict) -> dict[str, tuple[float, float]]:
    """The ranges stretched to take in the face's own original: an unchanged real face of the same photo, whose
    value (a face softer than its hair, a shadowed eye band) is natural for this face even where the others differ."""
    return {
        n: (min(lo, original[n]), max(hi, original[n])) if np.isfinite(original[n]) else (lo, hi)
        for n, (lo, hi) in ranges.items()
    }


def outside_names(flags: dict[str, bool]) -> str:
    return ",".join(n for n, ok in flags.items() if not ok) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", action="append", choices=("unmask", "replace"), help="default: both")
    parser.add_argument("--save", type=Path, help="write original|result crops of every changed face here (PNG, 2x)")
    parser.add_argument("--photo", action="append", help="only these test photos (file names in tests/data)")
    arguments = parser.parse_args()
    photos = arguments.photo or sorted(p.name for p in DATA.iterdir() if p.suffix in (".jpg", ".png"))
    if arguments.save:
        arguments.save.mkdir(parents=True, exist_ok=True)
    models = cached_models(identities=PipelineSettings.identities)  # the default count, not the tests' few
    predictor = models.replace.get().predictor
    masks: list = []
    recorded_paste_masks(masks)
    for mode in arguments.mode or ("unmask", "replace"):
        report(mode, *run_mode(mode, photos, models, predictor, masks, arguments.save))


if __name__ == "__main__":
    main()
