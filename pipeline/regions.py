"""The region a face occupies, from forehead to chin, as a soft mask.

Detector boxes of masked or tilted faces often stop above the chin, so the
region is the union of an ellipse around the box and an ellipse laid along the
face's own axis from its landmarks, which reaches from the forehead to below the
mouth whatever the box says.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from pipeline.types import Face

FOREHEAD_REACH = 1.6  # how far above the eyes the region reaches, in eye-to-mouth distances
CHIN_REACH = 1.1  # how far below the mouth the region reaches, in eye-to-mouth distances
CHEEK_REACH = 1.15  # half the region's width, in eye distances
BOX_GROWTH = 1.15  # the box ellipse's axes, relative to the half box


def face_ellipses(face: Face) -> list[tuple[tuple[float, float], tuple[float, float], float]]:
    """OpenCV ellipses ((cx, cy), (width, height), angle°) whose union covers the face."""
    x1, y1, x2, y2 = face.box
    ellipses = [(((x1 + x2) / 2, (y1 + y2) / 2), ((x2 - x1) * BOX_GROWTH, (y2 - y1) * BOX_GROWTH), 0.0)]
    points = np.asarray(face.landmarks, dtype=np.float64)
    eyes, mouth = points[:2].mean(axis=0), points[3:].mean(axis=0)
    axis = mouth - eyes
    eye_to_mouth = float(np.hypot(*axis))
    if eye_to_mouth > 1:
        down = axis / eye_to_mouth
        top = eyes - FOREHEAD_REACH * eye_to_mouth * down
        bottom = mouth + CHIN_REACH * eye_to_mouth * down
        length = float(np.hypot(*(bottom - top)))
        eye_distance = float(np.hypot(*(points[1] - points[0])))
        width = max(2 * CHEEK_REACH * eye_distance, 0.6 * length)
        angle = math.degrees(math.atan2(down[1], down[0])) - 90.0
        ellipses.append((tuple((top + bottom) / 2), (width, length), angle))
    return ellipses


def face_bounds(face: Face, image_size: tuple[int, int], margin: float = 0.0) -> tuple[int, int, int, int]:
    """Integer rectangle (x1, y1, x2, y2) around the face region plus a margin in pixels, clipped to the photo."""
    width, height = image_size
    corners = np.concatenate([cv2.boxPoints(ellipse) for ellipse in face_ellipses(face)])
    x1, y1 = np.floor(corners.min(axis=0) - margin).astype(int)
    x2, y2 = np.ceil(corners.max(axis=0) + margin).astype(int)
    return max(0, x1), max(0, y1), min(width, x2), min(height, y2)


def face_mask(face: Face, bounds: tuple[int, int, int, int], feather: float) -> np.ndarray:
    """Float mask in [0, 1] over `bounds`: 1 on the face region, fading out over `feather` pixels outside it."""
    x1, y1, x2, y2 = bounds
    mask = np.zeros((y2 - y1, x2 - x1), dtype=np.float32)
    for (cx, cy), (w, h), angle in face_ellipses(face):
        grown = ((cx - x1, cy - y1), (w + feather, h + feather), angle)
        cv2.ellipse(mask, grown, 1.0, thickness=-1, lineType=cv2.LINE_AA)
    if feather >= 1:
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=feather / 3)
    return np.clip(mask, 0.0, 1.0)


def face_scale(face: Face) -> float:
    """A face's size in pixels: the larger side of its box."""
    return max(face.width, face.height)
