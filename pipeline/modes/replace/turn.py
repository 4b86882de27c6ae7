"""A frontal donor turned to the pose of the face it replaces, before it is warped on.

Every donor is frontal (the pool's side views are full profiles, which dlib's 68
points cannot fit). Warped flat onto a face turned 25° or more, a frontal face
folds: its far cheek and the far side of its nose are squeezed past each other and
its features show twice. So the donor's landmarks are given a depth (a rough mean
head: a curved face with a nose, sunken eyes and lips in relief, `landmark_depths`),
rotated about the vertical axis until dlib's yaw matches the target's, and the
donor is drawn there triangle by triangle, farthest first, leaving out triangles
that turn their back to the camera: the nose hides the far cheek instead of
folding over it. The jaw points follow the turned head's outline (where dlib puts
them on a turned face), not the jaw's hidden points.
"""

from __future__ import annotations

import numpy as np

from pipeline.face.landmarks import JAW, LEFT_EYE, RIGHT_EYE, face_features
from pipeline.modes.replace.warp import delaunay_triangles, frame_ring, sample_triangles, signed_areas, triangle_affines

MIN_TURN = 0.1  # a donor within this much yaw of the target is used as it is (no second resampling)
MAX_ANGLE = np.radians(75)  # the most a donor is turned, either way
# The face's depth (towards the camera) in half face widths: its middle stands CENTRE_DEPTH behind the nose tip
# and it curves back by CURVE towards the jaw's edge (the jaw's ends stand 1.1 behind the nose tip).
CENTRE_DEPTH = 0.2
CURVE = 0.9
NOSE_RELIEF = {27: 0.05, 28: 0.1, 29: 0.15, 30: 0.2, 31: 0.02, 32: 0.06, 33: 0.1, 34: 0.06, 35: 0.02}
EYE_RELIEF = -0.05  # the eyes sit in their sockets
LIP_RELIEF = 0.05  # the lips stand out of the face
OUTLINE_SAMPLES = 64  # points of each cross-section searched for the turned head's outline
ANGLE_STEPS = 16  # bisection steps for the turn (150° / 2^16: far finer than dlib's yaw)


def turned_donor(image: np.ndarray, points: np.ndarray, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """The donor crop and its 68 landmarks turned to dlib's `yaw` (as they are when it is within `MIN_TURN`)."""
    points = np.asarray(points, dtype=np.float64)
    if abs(face_features(points).yaw - yaw) <= MIN_TURN:
        return image, points
    depths = landmark_depths(points)
    angle = angle_for_yaw(points, depths, yaw)
    turned = turned_points(points, depths, angle)
    ring = frame_ring(points)
    source = np.concatenate([points, ring])
    target = np.concatenate([turned, ring])  # the ring stays: the background around the head does not turn
    triangles = delaunay_triangles(source)
    facing = signed_areas(source, triangles) * signed_areas(target, triangles) > 0
    depth = np.concatenate([depths, np.full(len(ring), -np.inf)])[triangles].mean(axis=1)
    order = [index for index in np.argsort(depth, kind="stable") if facing[index]]  # farthest first
    triangles = triangles[order]
    matrices = triangle_affines(source, target, triangles)
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return sample_triangles(image, target, triangles, matrices, identity, (image.shape[1], image.shape[0])), turned


def landmark_depths(points: np.ndarray) -> np.ndarray:
    """The depth of each of a frontal face's 68 landmarks towards the camera, in half face widths (nose tip 0)."""
    centre, half = face_axis(points)
    across = np.clip((points[:, 0] - centre) / half, -1, 1)
    depths = surface_depth(across)
    for index, relief in NOSE_RELIEF.items():
        depths[index] += relief
    depths[LEFT_EYE + RIGHT_EYE] += EYE_RELIEF
    depths[48:68] += LIP_RELIEF
    return depths


def surface_depth(across: np.ndarray) -> np.ndarray:
    """Depth of the face's curved surface at `across` half widths from its middle."""
    return -CENTRE_DEPTH - CURVE * (1 - np.sqrt(1 - np.clip(across, -1, 1) ** 2))


def face_axis(points: np.ndarray) -> tuple[float, float]:
    """The face's middle (x) and half width, from the ends of its jaw line."""
    return float((points[0, 0] + points[16, 0]) / 2), max(1e-6, float((points[16, 0] - points[0, 0]) / 2))


def turned_points(points: np.ndarray, depths: np.ndarray, angle: float) -> np.ndarray:
    """The 68 landmarks of the face turned by `angle` (radians; positive brings the nose to the right).

    Inner points turn with the surface. Each jaw point goes to the turned outline of the head's cross-section
    at its height on its side: on the far side that is the cheek's edge, in front of the hidden jaw.
    """
    centre, half = face_axis(points)
    cos, sin = np.cos(angle), np.sin(angle)
    turned = points.copy()
    turned[:, 0] = centre + (points[:, 0] - centre) * cos + depths * half * sin
    jaw = np.asarray(JAW)
    sides = points[jaw, 0] - points[jaw[::-1], 0]  # each jaw point's distance from its mirror point
    moved = jaw[np.abs(sides) > 1e-6]  # the chin turns with the surface
    middle = (points[moved, 0] + points[moved[::-1], 0]) / 2
    width = np.abs(sides[moved]) / 2
    across = np.sign(sides[moved])[:, None] * np.linspace(0, 1, OUTLINE_SAMPLES)[None]
    outline = centre + (middle - centre)[:, None] * cos + across * width[:, None] * cos
    outline += surface_depth(across * width[:, None] / half) * half * sin
    turned[moved, 0] = np.take_along_axis(outline, np.argmax(np.sign(sides[moved])[:, None] * outline, axis=1)[:, None], 1)[:, 0]
    return turned + (points.mean(axis=0) - turned.mean(axis=0)) * [1, 0]


def angle_for_yaw(points: np.ndarray, depths: np.ndarray, yaw: float) -> float:
    """The turn (radians) that gives dlib's `yaw` (bisection: yaw grows with the angle)."""
    low, high = -MAX_ANGLE, MAX_ANGLE
    for _ in range(ANGLE_STEPS):
        middle = (low + high) / 2
        if face_features(turned_points(points, depths, middle)).yaw < yaw:
            low = middle
        else:
            high = middle
    return (low + high) / 2
