"""Face detection behind one function, `detect_faces`, whatever the backend.

Backends: RetinaFace (the default; onnxruntime on a CPU, torch on a GPU) and CenterFace (ONNX via OpenCV),
each with `detect(image, score_threshold) -> Detections`, chosen by manifest name
from `DETECTORS` (name -> the backend module's `load(path, device)`). Large photos
are downscaled for detection and the results scaled back to the photo's pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from pipeline.detection import centerface, retinaface
from pipeline.detection.boxes import non_max_suppression
from pipeline.detection.types import Detections

MERGE_IOU = 0.4  # passes at two scales that overlap this much are one face
SMALL_FACE_PIXELS = 160  # the upscaled pass only adds faces smaller than this, in its own pixels


class FaceDetector(Protocol):
    def detect(self, image: np.ndarray, score_threshold: float) -> Detections: ...


DETECTORS: dict[str, Callable[[Path, str], FaceDetector]] = {
    "retinaface_mobilenet0.25": partial(retinaface.load, name="retinaface_mobilenet0.25"),
    "retinaface_resnet50": partial(retinaface.load, name="retinaface_resnet50"),
    "centerface": centerface.load,
}
"""Each detector by its manifest name, with its loader `(path, device) -> FaceDetector`."""


def detect_faces(
    image: np.ndarray,
    detector: FaceDetector,
    max_side: int = 1280,
    score_threshold: float = 0.6,
    upscale_below: int = 800,
) -> Detections:
    """Find faces in an RGB photo.

    Args:
        image: H×W×3 uint8 RGB.
        detector: a backend from `DETECTORS` (`models.load_detector`).
        max_side: the photo is downscaled so that its longer side is at most this.
        score_threshold: minimum face score.
        upscale_below: a photo whose longer side is below this is also searched at
            twice its size, so that faces of about 16 px are found too.

    Returns:
        Detections in the photo's own pixels, boxes clipped to the photo.
    """
    height, width = image.shape[:2]
    base_scale = min(1.0, max_side / max(height, width))
    scales = [base_scale]
    if max(height, width) * base_scale < upscale_below:
        scales.append(base_scale * 2)
    passes = []
    for scale in scales:
        found = detector.detect(resize_image(image, scale), score_threshold)
        if scale != base_scale:
            found = found.subset(np.nonzero((found.boxes[:, 2:] - found.boxes[:, :2]).max(axis=1) < SMALL_FACE_PIXELS)[0])
        passes.append(found.scaled(1.0 / scale))
    detections = Detections.concatenate(passes)
    if len(passes) > 1:
        detections = detections.subset(non_max_suppression(detections.boxes, detections.scores, MERGE_IOU))
    boxes = detections.boxes.copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    valid = (boxes[:, 2] - boxes[:, 0] >= 2) & (boxes[:, 3] - boxes[:, 1] >= 2)
    return Detections(boxes, detections.scores, detections.landmarks).subset(np.nonzero(valid)[0])


def resize_image(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)
