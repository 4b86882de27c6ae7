"""A face cut out of the photo at a scale where landmarks and warps work, and the unmask networks' aligned frame."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.align import TEMPLATES, estimate_similarity, transform_points
from pipeline.face.landmarks import dlib_box_from_five, find_landmarks68, five_from_68
from pipeline.regions import face_bounds, face_scale
from pipeline.types import Face

MIN_FACE_PX = 24  # faces whose box is smaller than this (pixels) are blurred
WORK_FACE_PX = (128, 320)  # faces are resampled so their box side falls in this range
CROP_MARGIN = 0.45  # room around the face region in the work crop, as a fraction of the face size
MAX_YAW = 0.75  # beyond this (near profile) the 68-point fit and the warp are unreliable
MIN_EYE_RATIO = 0.8  # five-point eye distance / eye-to-mouth below this is a profile view (as in the donor pool)
# Unmask samples are aligned to dlib's chip template (unit face: eyes at y 0.21, mouth at 0.78); a sample is this
# square of it (x1, y1, side), from the lower forehead to below the chin, where the largest masks end.
TEMPLATE = "dlib_chip"
WINDOW = (-0.385, -0.15, 1.75)


@dataclass(frozen=True)
class PreparedFace:
    """A face cut out at its working scale, with its dense landmarks."""

    crop: np.ndarray
    matrix: np.ndarray  # photo -> crop
    scale: float  # crop pixels per photo pixel
    points: np.ndarray  # 68×2 in crop pixels
    size_px: float  # face box side in crop pixels

    def photo_box(self) -> tuple[float, float, float, float]:
        """The crop's box in photo pixels (x, y, width, height): the crop is axis-aligned and only scaled."""
        sx, sy = self.matrix[0, 0], self.matrix[1, 1]
        height, width = self.crop.shape[:2]
        return -self.matrix[0, 2] / sx, -self.matrix[1, 2] / sy, width / sx, height / sy


def prepare_face(image: np.ndarray, face: Face, predictor) -> PreparedFace:
    """Cut the face out at a scale where landmarks and warps work, and fit 68 landmarks."""
    size = face_scale(face)
    scale = float(np.clip(size, *WORK_FACE_PX) / size)
    x1, y1, x2, y2 = face_bounds(face, (image.shape[1], image.shape[0]), margin=CROP_MARGIN * size)
    width, height = max(1, round((x2 - x1) * scale)), max(1, round((y2 - y1) * scale))
    region = image[y1:y2, x1:x2]
    crop = cv2.resize(region, (width, height), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    sx, sy = width / (x2 - x1), height / (y2 - y1)
    matrix = np.array([[sx, 0.0, -sx * x1], [0.0, sy, -sy * y1]])
    five = transform_points(face.landmarks, matrix)
    points = find_landmarks68(predictor, crop, dlib_box_from_five(five))
    return PreparedFace(crop, matrix, scale, points, size * scale)


def sample_matrix(points68: np.ndarray, size: int) -> np.ndarray:
    """The 2×3 similarity taking the face's pixels into the size×size aligned frame of the training samples."""
    x1, y1, side = WINDOW
    template = (TEMPLATES[TEMPLATE] - [x1, y1]) / side * size
    return estimate_similarity(five_from_68(points68), template)
