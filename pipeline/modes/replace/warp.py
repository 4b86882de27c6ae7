"""Piecewise-affine warp of a donor face onto a target's 68 landmarks (plain numpy and OpenCV).

`donor_layout` says where the donor's features go: the target's jaw line (so the
head keeps its outline and pose) with the donor's own brows, eyes, nose and mouth,
placed over the target's. `unfolded_layout` pulls them towards the target's own
until the warp folds no more than the two faces' poses make it: a triangle turned
over shows a piece of the donor twice.

The target's landmarks plus a ring of frame points are triangulated
(Delaunay); each triangle maps affinely to the donor's matching triangle. The
frame points follow the best similarity between the two faces, so the map is
continuous everywhere: inside the face it follows every landmark, towards the
crop's edge it fades into a plain similarity.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.align import estimate_similarity, transform_points
from pipeline.face.landmarks import JAW

FRAME_POINTS = 16  # points on the ring around the face that anchor the warp
FRAME_REACH = 1.6  # the ring's radius relative to the face's own radius
MAX_FOLDED = 0.004  # share of the face's area whose triangles may be turned over in the donor (slivers at the jaw)
UNFOLD_STEPS = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)  # shares of the donor's layout tried, most first


def donor_layout(donor_points: np.ndarray, target_points: np.ndarray) -> np.ndarray:
    """68 landmarks for the replaced face: the target's jaw, the donor's inner features placed by the best
    similarity between the two faces' inner features.

    A recogniser reads identity largely from where the eyes, nose and mouth sit and
    how big they are. Warping the donor onto all of the target's landmarks kept that
    layout, and with it the original's identity: on the test photos the dlib distance
    from the original rose by 0.05-0.10 with the donor's layout.
    """
    donor_points = np.asarray(donor_points, dtype=np.float64)
    layout = np.asarray(target_points, dtype=np.float64).copy()
    inner = np.setdiff1d(np.arange(len(layout)), JAW)
    # Fitted on the jaw too, a frontal donor's features sat in the middle of a turned face's jaw
    # while the target's own nose and mouth stood beside them, at the edge: two noses.
    similarity = estimate_similarity(donor_points[inner], layout[inner])  # donor -> target
    layout[inner] = transform_points(donor_points[inner], similarity)
    return layout


def unfolded_layout(donor_points: np.ndarray, layout: np.ndarray, target_points: np.ndarray) -> np.ndarray:
    """`layout`, or the nearest blend of it towards `target_points` whose warp from the donor folds no more than
    the target's own landmarks do (plus `MAX_FOLDED` of the face's area).

    A triangle turned over in the donor (a feature placed beyond the jaw line,
    say) maps a piece of the donor face a second time, mirrored: the donor's eye
    or mouth corner showed twice. A frontal donor on a turned face folds a few
    slivers along the far jaw line whatever the layout (the target's cheek there is
    foreshortened to nothing); those are not the layout's doing.
    """
    layout = np.asarray(layout, dtype=np.float64)
    target_points = np.asarray(target_points, dtype=np.float64)
    allowed = folded_area(donor_points, target_points) + MAX_FOLDED * face_area(target_points)
    for share in UNFOLD_STEPS:
        candidate = target_points + share * (layout - target_points)
        if folded_area(donor_points, candidate) <= allowed:
            return candidate
    return target_points


def face_area(points: np.ndarray) -> float:
    hull = cv2.convexHull(np.asarray(points, dtype=np.float32))
    return float(cv2.contourArea(hull))


def folded_area(donor_points: np.ndarray, target_points: np.ndarray) -> float:
    """The area (in target pixels) of the warp's triangles that are turned over in the donor."""
    donor_all, target_all, triangles, _ = warp_mesh(donor_points, target_points)
    target_areas = signed_areas(target_all, triangles)
    folded = signed_areas(donor_all, triangles) * np.sign(target_areas) < 0
    return float(np.abs(target_areas[folded]).sum())


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = (points[triangles[:, i]] for i in range(3))
    return ((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]) / 2


def warp_mesh(donor_points: np.ndarray, target_points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The warp's points in the donor and the target (landmarks, then the frame ring), its triangles, and the
    target -> donor similarity that the ring follows."""
    donor_points = np.asarray(donor_points, dtype=np.float64)
    target_points = np.asarray(target_points, dtype=np.float64)
    similarity = estimate_similarity(target_points, donor_points)  # target -> donor
    target_ring = frame_ring(target_points)
    donor_all = np.concatenate([donor_points, transform_points(target_ring, similarity)])
    target_all = np.concatenate([target_points, target_ring])
    return donor_all, target_all, delaunay_triangles(target_all), similarity


def frame_ring(points: np.ndarray, count: int = FRAME_POINTS, reach: float = FRAME_REACH) -> np.ndarray:
    """`count` points on a circle around the landmarks, `reach` times their radius from their centre."""
    points = np.asarray(points, dtype=np.float64)
    centre = points.mean(axis=0)
    radius = reach * float(np.max(np.hypot(*(points - centre).T)))
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def delaunay_triangles(points: np.ndarray) -> np.ndarray:
    """Delaunay triangulation of 2-D points as a T×3 array of point indices."""
    points = np.asarray(points, dtype=np.float64)
    low = points.min(axis=0) - 10
    high = points.max(axis=0) + 10
    subdiv = cv2.Subdiv2D((int(np.floor(low[0])), int(np.floor(low[1])), int(np.ceil(high[0] - low[0])) + 1, int(np.ceil(high[1] - low[1])) + 1))
    lookup = {}
    for index, (x, y) in enumerate(points):
        lookup[(round(float(x), 3), round(float(y), 3))] = index
        subdiv.insert((float(x), float(y)))
    triangles = []
    for x1, y1, x2, y2, x3, y3 in subdiv.getTriangleList():
        corners = [lookup.get((round(float(x), 3), round(float(y), 3))) for x, y in ((x1, y1), (x2, y2), (x3, y3))]
        if None not in corners:
            triangles.append(corners)
    return np.array(triangles, dtype=np.int64).reshape(-1, 3)


def triangle_affines(source: np.ndarray, target: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """For each triangle, the 2×3 affine taking its target corners to its source corners (T×2×3)."""
    matrices = np.empty((len(triangles), 2, 3), dtype=np.float64)
    for index, corners in enumerate(triangles):
        matrices[index] = cv2.getAffineTransform(target[corners].astype(np.float32), source[corners].astype(np.float32))
    return matrices


def warp_piecewise(donor: np.ndarray, donor_points: np.ndarray, target_points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The donor image warped so that its landmarks land on the target's, over a crop of `size` (w, h).

    Args:
        donor: h×w×C donor image.
        donor_points: N×2 donor landmarks in donor pixels.
        target_points: N×2 matching landmarks in the output crop's pixels.
        size: (width, height) of the output.

    Returns:
        The warped donor, size[1]×size[0]×C, same dtype.
    """
    donor_all, target_all, triangles, similarity = warp_mesh(donor_points, target_points)
    matrices = triangle_affines(donor_all, target_all, triangles)
    return sample_triangles(donor, target_all, triangles, matrices, similarity, size)


def sample_triangles(
    source: np.ndarray, target_points: np.ndarray, triangles: np.ndarray, matrices: np.ndarray, outside: np.ndarray,
    size: tuple[int, int],
) -> np.ndarray:
    """An image of `size` (w, h) whose every triangle (drawn in order: a later one covers an earlier one) samples
    `source` through its affine in `matrices` (output -> source); pixels outside every triangle through `outside`."""
    width, height = size
    labels = np.full((height, width), -1, dtype=np.int32)
    for index, corners in enumerate(triangles):
        cv2.fillConvexPoly(labels, np.round(target_points[corners]).astype(np.int32), int(index))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    uncovered = labels < 0
    chosen = np.where(uncovered[..., None, None], outside[None, None], matrices[np.maximum(labels, 0)])
    map_x = (chosen[..., 0, 0] * xs + chosen[..., 0, 1] * ys + chosen[..., 0, 2]).astype(np.float32)
    map_y = (chosen[..., 1, 0] * xs + chosen[..., 1, 1] * ys + chosen[..., 1, 2]).astype(np.float32)
    return cv2.remap(source, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
