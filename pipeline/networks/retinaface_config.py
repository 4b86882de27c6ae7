"""RetinaFace's two published shapes (biubug6/Pytorch_Retinaface's `cfg_mnet` and `cfg_re50`), without torch:
the network (`retinaface.py`) and the detector that decodes its anchors both read them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetinaFaceConfig:
    backbone: str
    in_channel: int
    out_channel: int
    min_sizes: tuple[tuple[int, int], ...] = ((16, 32), (64, 128), (256, 512))
    steps: tuple[int, ...] = (8, 16, 32)
    variance: tuple[float, float] = (0.1, 0.2)


MOBILENET_CONFIG = RetinaFaceConfig(backbone="mobilenet0.25", in_channel=32, out_channel=64)
RESNET50_CONFIG = RetinaFaceConfig(backbone="resnet50", in_channel=256, out_channel=256)
CONFIGS = {"retinaface_mobilenet0.25": MOBILENET_CONFIG, "retinaface_resnet50": RESNET50_CONFIG}
"""Each RetinaFace by its manifest name."""
