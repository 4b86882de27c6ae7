"""RetinaFace as a face detector: the network's outputs decoded into faces, in numpy.

On a CPU the network runs in onnxruntime, from an ONNX export of the checkpoint
cached beside it, so a command that only detects never imports torch once the
export exists (about 1 s of start-up saved). The torch network itself, in the
layout of biubug6/Pytorch_Retinaface, is `pipeline.networks.retinaface`; it is
loaded to make the export, and on a GPU.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from pipeline import weights
from pipeline.detection.boxes import non_max_suppression
from pipeline.detection.types import Detections
from pipeline.networks.retinaface_config import CONFIGS, RetinaFaceConfig

if TYPE_CHECKING:
    from pipeline.networks.retinaface import RetinaFace


BGR_MEAN = (104.0, 117.0, 123.0)
NETWORK_SOURCE = Path(__file__).parent.parent / "networks" / "retinaface.py"  # read for the export's cache key, not imported (torch)


@lru_cache(maxsize=8)
def prior_boxes(config: RetinaFaceConfig, height: int, width: int) -> np.ndarray:
    """Anchors as (cx, cy, w, h), normalised to the input size, in the network's output order.

    Cached for the few input sizes seen last; treat the result as read-only.
    """
    levels = []
    for step, min_sizes in zip(config.steps, config.min_sizes):
        rows, cols = int(np.ceil(height / step)), int(np.ceil(width / step))
        center_y, center_x = np.meshgrid(
            (np.arange(rows) + 0.5) * step / height, (np.arange(cols) + 0.5) * step / width, indexing="ij"
        )
        sizes = [
            np.stack([center_x, center_y, np.full_like(center_x, size / width), np.full_like(center_x, size / height)], axis=-1)
            for size in min_sizes
        ]
        levels.append(np.stack(sizes, axis=2).reshape(-1, 4))  # row, column, anchor size: the network's order
    return np.concatenate(levels).astype(np.float32)


def decode_detections(
    boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray, priors: np.ndarray, config: RetinaFaceConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn one image's regressions into corner boxes and landmarks, normalised to [0, 1].

    Returns:
        (boxes A×4 as x1, y1, x2, y2; face scores A; landmarks A×5×2)
    """
    var0, var1 = config.variance
    centers = priors[:, :2] + boxes[:, :2] * var0 * priors[:, 2:]
    sizes = priors[:, 2:] * np.exp(boxes[:, 2:] * var1)
    corners = np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1)
    points = priors[:, None, :2] + landmarks.reshape(-1, 5, 2) * var0 * priors[:, None, 2:]
    return corners, scores[:, 1], points


class RetinaFaceDetector:
    """Runs a RetinaFace on one RGB photo and returns its faces.

    The network runs in onnxruntime when an ONNX export of it is given (about
    twice as fast as torch on a CPU, outputs equal within 1e-4), else in torch.
    """

    def __init__(
        self, config: RetinaFaceConfig, network: RetinaFace | None = None, device: str = "cpu", nms_iou: float = 0.4,
        onnx_model: bytes | None = None,
    ):
        if network is None and onnx_model is None:
            raise ValueError("RetinaFaceDetector needs the torch network or its ONNX export")
        self.config = config
        self.network = network
        self.device = device
        self.nms_iou = nms_iou
        self.onnx_model = onnx_model
        self._session = None
        self._session_lock = threading.Lock()

    def run_network(self, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The network's three outputs for one 3×H×W float array, batch dimension dropped."""
        if self.onnx_model is not None:
            return tuple(output[0] for output in self.onnx_session().run(None, {"image": bgr[None]}))
        import torch

        batch = torch.from_numpy(bgr)[None].to(self.device)
        with torch.inference_mode():
            return tuple(t[0].float().cpu().numpy() for t in self.network(batch))

    def onnx_session(self):
        """The onnxruntime session, made on first use so that it gets the thread count set by then (`limit_cpu_threads`, which sets OpenCV's)."""
        with self._session_lock:
            if self._session is None:
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = max(1, cv2.getNumThreads())
                options.inter_op_num_threads = 1
                self._session = onnxruntime.InferenceSession(self.onnx_model, options, providers=["CPUExecutionProvider"])
            return self._session

    def detect(self, image: np.ndarray, score_threshold: float) -> Detections:
        """Faces in an H×W×3 uint8 RGB array, in that array's pixels."""
        height, width = image.shape[:2]
        bgr = image[:, :, ::-1].astype(np.float32) - np.asarray(BGR_MEAN, dtype=np.float32)
        boxes, scores, landmarks = self.run_network(np.ascontiguousarray(bgr.transpose(2, 0, 1)))
        chosen = scores[:, 1] >= score_threshold  # decode only these: a 1280-pixel photo has some 170,000 anchors
        priors = prior_boxes(self.config, height, width)[chosen]
        corners, face_scores, points = decode_detections(boxes[chosen], scores[chosen], landmarks[chosen], priors, self.config)
        scale = np.asarray([width, height], dtype=np.float32)
        corners = corners * np.tile(scale, 2)
        points = points * scale
        keep = non_max_suppression(corners, face_scores, self.nms_iou)
        return Detections(corners[keep], face_scores[keep], points[keep])


def onnx_cache_path(checkpoint: Path, name: str) -> Path:
    """Where the ONNX export of `checkpoint` is cached: beside it, named by a hash of the checkpoint's sha256
    (the one the manifest checks), the manifest name, the network's code and torch's version, so that a
    changed one of these is exported afresh."""
    stat = checkpoint.stat()
    key = "\n".join((
        weights.file_sha256(str(checkpoint), stat.st_size, stat.st_mtime_ns), name,
        hashlib.sha256(NETWORK_SOURCE.read_bytes()).hexdigest(), importlib.metadata.version("torch"),
    ))
    return checkpoint.with_name(f".{checkpoint.stem}.{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx")


def onnx_export(network: RetinaFace, cached: Path) -> bytes:
    """The network as an ONNX model for any input size, written to `cached` (about 1 s to make); where the
    folder is read-only the export is made again in each process."""
    import torch

    buffer = io.BytesIO()
    sizes = {2: "height", 3: "width"}
    torch.onnx.export(
        network, (torch.zeros(1, 3, 320, 320),), buffer, dynamo=False, input_names=["image"], output_names=["boxes", "scores", "landmarks"],
        dynamic_axes={"image": sizes, "boxes": {1: "anchors"}, "scores": {1: "anchors"}, "landmarks": {1: "anchors"}},
    )
    model = buffer.getvalue()
    temporary = cached.with_name(f"{cached.name}.{threading.get_native_id()}")
    try:
        temporary.write_bytes(model)
        temporary.replace(cached)  # whole or not at all, should two processes export at once
    except OSError:
        temporary.unlink(missing_ok=True)
    return model


def load(path: Path, device: str = "cpu", name: str = "retinaface_mobilenet0.25") -> RetinaFaceDetector:
    """A detector running the checkpoint at `path`: on a CPU in onnxruntime (torch only imported to make a
    missing export), else in torch."""
    cached = onnx_cache_path(path, name) if device == "cpu" else None
    if cached is not None and cached.is_file():
        return RetinaFaceDetector(CONFIGS[name], onnx_model=cached.read_bytes())
    from pipeline.networks.retinaface import load_network

    network = load_network(path, device, name)
    if cached is None:
        return RetinaFaceDetector(CONFIGS[name], network, device)
    return RetinaFaceDetector(CONFIGS[name], network, device, onnx_model=onnx_export(network, cached))
