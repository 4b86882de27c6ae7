"""The anonymity check: dlib's 128-D face descriptors and the distance a replaced face must keep.

dlib publishes 0.6 as its same-person threshold (99.38% on LFW). A replaced face
must be at least `MIN_DISTANCE` from the original and from every kept face; the
margin above 0.6 is measured in bench/replace.py (see the README).
"""

from __future__ import annotations

import numpy as np

SAME_PERSON_THRESHOLD = 0.6  # dlib's published threshold
MIN_DISTANCE = 0.7  # from the original: the threshold plus a measured margin (re-identification risk)
MIN_KEPT_DISTANCE = SAME_PERSON_THRESHOLD  # from kept faces: only must not pass as them (no privacy risk, no margin)


def shape_from_points(points: np.ndarray):
    """A dlib full_object_detection from 68×2 landmarks."""
    import dlib

    points = np.asarray(points)
    xs, ys = points[:, 0], points[:, 1]
    rect = dlib.rectangle(int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
    return dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y))) for x, y in points])


def describe_face(recognizer, image: np.ndarray, points68: np.ndarray) -> np.ndarray:
    """The 128-D dlib descriptor of the face with these landmarks in an RGB image."""
    descriptor = recognizer.compute_face_descriptor(np.ascontiguousarray(image), shape_from_points(points68))
    return np.asarray(descriptor, dtype=np.float64)


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def closest_distance(descriptor: np.ndarray, others: list[np.ndarray]) -> float:
    """Distance to the nearest of `others` (infinity when there are none)."""
    return min((descriptor_distance(descriptor, other) for other in others), default=float("inf"))
