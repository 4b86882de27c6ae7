"""Path (a) of unmask mode: a trained checkpoint finds the mask on an aligned face and paints the face under it.

Faces come in the dataset's aligned frame (`dataset.py`'s template); a crop of
another side in that same frame is resized to the networks' size for the
networks, and only the filled hole comes back at the crop's own resolution:
pixels outside the hole are returned untouched.

torch is imported where the networks are loaded or run, not with this module:
the other modes import it too, and blur needs no torch.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from pipeline.errors import WeightsError

if TYPE_CHECKING:
    import torch

    from pipeline.modes.unmask.networks import LowerFaceInpainter, MaskSegmenter

log = logging.getLogger(__name__)

MASK_THRESHOLD = 0.5  # segmenter probability from which a pixel is covered
MASK_GROW = 2 / 128  # a predicted hole is grown by this fraction of the crop side, so the mask's rim is repainted too
BATCH = 16  # faces per forward pass


@dataclass(frozen=True)
class UnmaskNetworks:
    """Both networks in eval mode, on one device, with the crop side they were trained at."""

    segmenter: MaskSegmenter
    inpainter: LowerFaceInpainter
    size: int
    device: str
    step: int  # training steps behind these weights


def load_unmask_networks(path: Path, device: str = "cpu") -> UnmaskNetworks:
    """The networks of a checkpoint written by `unmask train`.

    Raises:
        MissingWeights: no checkpoint at `path` (the message names the command that trains one).
        CorruptWeights: not a readable unmask checkpoint.
    """
    from pipeline.modes.unmask.checkpoint import build_networks, read_checkpoint

    document = read_checkpoint(Path(path))
    segmenter, inpainter = build_networks(document, Path(path).name)
    train = document["train"]
    return UnmaskNetworks(
        segmenter.to(device).eval(), inpainter.to(device).eval(), int(train["options"]["size"]), device, int(train["step"])
    )


class TrainedUnmask:
    """A checkpoint (the weights folder's `unmask.pt` in a worker), loaded on first use and kept; None when there is none.

    A file that is present but unreadable is logged once and unmask mode keeps its donor transplant.
    """

    def __init__(self, path: Path, device: str = "cpu"):
        self.path = Path(path)
        self.device = device
        self._networks: UnmaskNetworks | None = None
        self._tried = False
        self._lock = threading.Lock()

    def get(self) -> UnmaskNetworks | None:
        with self._lock:
            if not self._tried and self.path.is_file():
                try:
                    self._networks = load_unmask_networks(self.path, self.device)
                    log.info("unmask mode paints with %s (%d training steps)", self.path.name, self._networks.step)
                except WeightsError as error:
                    log.warning("unmask mode ignores %s: %s", self.path.name, error)
            self._tried = True
            return self._networks


def to_network(images: np.ndarray, device: str) -> torch.Tensor:
    """N×S×S×3 uint8 -> N×3×S×S float in [-1, 1]."""
    import torch

    return torch.tensor(np.asarray(images)).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """N×3×S×S in [-1, 1] -> N×S×S×3 uint8."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def resize_all(images: np.ndarray, side: int, interpolation: int) -> np.ndarray:
    """Every image of a stack (N×H×W[×C]) resized to side×side."""
    if images.shape[1:3] == (side, side):
        return images
    return np.stack([cv2.resize(image, (side, side), interpolation=interpolation) for image in images])


def grow(holes: np.ndarray, pixels: int) -> np.ndarray:
    """Each binary hole (N×H×W float32) dilated by a disc of `pixels` radius."""
    if pixels <= 0:
        return holes
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return np.stack([cv2.dilate(hole, disc) for hole in holes])


def predict_masks(networks: UnmaskNetworks, faces: np.ndarray) -> np.ndarray:
    """The segmenter's probability that each pixel is covered by a mask: N×H×W float32 for N×H×W×3 uint8 faces."""
    import torch

    faces = np.asarray(faces)
    small = resize_all(faces, networks.size, cv2.INTER_AREA)
    with torch.no_grad():
        probabilities = np.concatenate([
            torch.sigmoid(networks.segmenter(to_network(small[start : start + BATCH], networks.device)))[:, 0].cpu().numpy()
            for start in range(0, len(small), BATCH)
        ])
    return resize_all(probabilities.astype(np.float32), faces.shape[1], cv2.INTER_LINEAR)


def holes_from_masks(masks: np.ndarray) -> np.ndarray:
    """The holes to fill (float32, 0 or 1) from covering masks: every pixel they touch, soft edge and shadow included."""
    return (np.asarray(masks) > 0).astype(np.float32)


def holes_from_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """The holes to fill (N×H×W float32, 0 or 1) from the segmenter's probabilities: thresholded, then grown by `MASK_GROW`."""
    holes = (np.asarray(probabilities) >= MASK_THRESHOLD).astype(np.float32)
    return grow(holes, round(MASK_GROW * holes.shape[1]))


def inpaint_faces(networks: UnmaskNetworks, faces: np.ndarray, masks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Paint the lower face under each face's mask.

    Args:
        networks: from `load_unmask_networks`.
        faces: N×H×W×3 uint8 RGB aligned faces (H = W; any side, the dataset's frame).
        masks: N×H×W float32 in [0, 1], 1 where the covering is (`holes_from_masks`);
            None: the segmenter finds it (`holes_from_probabilities`).

    Returns:
        (N×H×W×3 uint8 faces: the input outside the hole, the painting inside;
         N×H×W float32: the hole that was filled)
    """
    import torch

    faces = np.asarray(faces)
    side = faces.shape[1]
    if masks is None:
        holes = holes_from_probabilities(predict_masks(networks, faces))
    else:
        holes = holes_from_masks(masks)
    small_faces = resize_all(faces, networks.size, cv2.INTER_AREA)
    small_holes = (resize_all(holes, networks.size, cv2.INTER_AREA) > 0).astype(np.float32)
    painted = []
    with torch.no_grad():
        for start in range(0, len(faces), BATCH):
            hole = torch.from_numpy(np.ascontiguousarray(small_holes[start : start + BATCH]))[:, None].to(networks.device)
            painted.append(to_uint8(networks.inpainter(to_network(small_faces[start : start + BATCH], networks.device), hole)))
    prediction = resize_all(np.concatenate(painted), side, cv2.INTER_LINEAR)
    return np.where(holes[..., None] > 0, prediction, faces), holes  # at the crop's own resolution


def inpaint_face(networks: UnmaskNetworks, face: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`inpaint_faces` for one H×W×3 face (and optionally its H×W covering mask)."""
    painted, holes = inpaint_faces(networks, face[None], None if mask is None else np.asarray(mask)[None])
    return painted[0], holes[0]
