"""Alignment templates as data, and warps that return their matrix.

A template gives the five landmarks (left eye, right eye, nose, left mouth
corner, right mouth corner) in a unit square; a pose set is several such
templates (K×5×2), of which the one a face fits best is used. `warp_face` maps a
face's detected landmarks onto a template with a similarity transform and
returns the crop together with the 2×3 matrix, so paste-back can invert the
same warp.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# dlib's face chip (get_face_chip_details): its mean face shape at the eye
# centres, nose tip and mouth corners. Used with a padding of 0.2 by the dlib
# age and gender networks.
TEMPLATES = {
    "dlib_chip": np.array(
        [[0.224152, 0.2119465], [0.75610125, 0.2119465], [0.490127, 0.628106], [0.254149, 0.780233], [0.726104, 0.780233]],
        dtype=np.float64,
    ),
    # SimSwap 224's alignment: the five "new arc" pose templates of neuralchen/SimSwap
    # (insightface_func/utils/face_align_ffhqandnewarc.py), from left profile through
    # frontal to right profile, given there in a 112-pixel square.
    "simswap_newarc": np.array(
        [
            [[51.642, 50.115], [57.617, 49.990], [35.740, 69.007], [51.157, 89.050], [57.025, 89.702]],
            [[45.031, 50.118], [65.568, 50.872], [39.677, 68.111], [45.177, 86.190], [64.246, 86.758]],
            [[39.730, 51.138], [72.270, 51.138], [56.000, 68.493], [42.463, 87.010], [69.537, 87.010]],
            [[46.845, 50.872], [67.382, 50.118], [72.737, 68.111], [48.167, 86.758], [67.236, 86.190]],
            [[54.796, 49.990], [60.771, 50.115], [76.673, 69.007], [55.388, 89.702], [61.257, 89.050]],
        ],
        dtype=np.float64,
    ) / 112,
    # SimSwap 512's alignment: the FFHQ template of the same file, given there in a 512-pixel square.
    "ffhq": np.array(
        [[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935], [201.26117, 371.41043], [313.08905, 371.15118]],
        dtype=np.float64,
    ) / 512,
}


def template_points(name: str, size: int, padding: float = 0.0) -> np.ndarray:
    """A template's landmarks in pixels of a size×size crop with padding around the unit face (K×5×2 for a pose set)."""
    return (TEMPLATES[name] + padding) / (1 + 2 * padding) * size


def alignment_matrix(landmarks: np.ndarray, template: str, size: int, padding: float = 0.0) -> np.ndarray:
    """The similarity taking a face's five landmarks onto a template in a size×size crop.

    For a pose set, the pose whose fit leaves the smallest summed point error
    wins (as SimSwap chooses among its "new arc" poses).
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    best, best_error = None, float("inf")
    for points in template_points(template, size, padding).reshape(-1, 5, 2):
        matrix = estimate_similarity(landmarks, points)
        error = float(np.hypot(*(transform_points(landmarks, matrix) - points).T).sum())
        if error < best_error:
            best, best_error = matrix, error
    return best


def estimate_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares rotation, uniform scale and translation taking source points onto target points (Umeyama).

    Returns:
        2×3 float64 affine matrix.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centered, target_centered = source - source_mean, target - target_mean
    covariance = target_centered.T @ source_centered / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rotation = u @ np.diag(sign) @ vt
    variance = (source_centered**2).sum() / len(source)
    scale = (singular * sign).sum() / variance if variance > 0 else 1.0
    translation = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, translation[:, None]])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """N×2 points moved by a 2×3 affine matrix (float64)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return points @ np.asarray(matrix, dtype=np.float64)[:, :2].T + matrix[:, 2]


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2×3 affine applying `inner`, then `outer`."""
    return (np.vstack([outer, [0.0, 0.0, 1.0]]) @ np.vstack([inner, [0.0, 0.0, 1.0]]))[:2]


def warp_face(
    image: np.ndarray, landmarks: np.ndarray, template: str, size: int, padding: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Crop a face aligned to a template.

    A crop much smaller than the face is not aliased (`warp_antialiased`).

    Args:
        image: H×W×C photo.
        landmarks: the face's five landmarks, 5×2 pixels.
        template: a key of TEMPLATES (for a pose set, the best-fitting pose is used).
        size: side of the square crop in pixels.
        padding: extra room around the template's unit face, as a fraction of it.

    Returns:
        (size×size×C crop, 2×3 matrix from photo pixels to crop pixels)
    """
    matrix = alignment_matrix(landmarks, template, size, padding)
    return warp_antialiased(image, matrix, size), matrix


def warp_antialiased(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The size×size crop that a 2×3 photo -> crop `matrix` makes; where it shrinks the photo more
    than twice, it is warped at a multiple of the size and area-averaged down, so it is not aliased."""
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    oversample = max(1, math.ceil(0.5 / scale)) if scale > 0 else 1
    large = cv2.warpAffine(
        image, matrix * oversample, (size * oversample, size * oversample), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return large if oversample == 1 else cv2.resize(large, (size, size), interpolation=cv2.INTER_AREA)
