"""SimSwap's ArcFace identity network (`arcface_checkpoint.tar`): the IR-ResNet of
models/arcface_models.py in neuralchen/SimSwap (from foamliu/InsightFace-v2).

Parameter names are the original's: `conv1`, `bn1`, `prelu`, `layer1..4.i.{bn0,
conv1, bn1, prelu, conv2, bn2, se.fc.{0,1,2}, downsample.{0,1}}`, `bn2`, `fc`
(512·7·7 -> 512), `bn3`. The block counts and whether blocks carry a
squeeze-excitation (`se`) branch are read from the checkpoint (the ResNet-50
variant has [3, 4, 14, 3]).

`forward(x)`: N×3×112×112 RGB in [0, 1] normalised with the ImageNet mean
(0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225); SimSwap makes it from
the 224 crop with `F.interpolate(img, size=(112, 112))` (nearest). Returns the raw N×512 embedding after `bn3`, not
L2-normalised (SimSwap normalises it itself before feeding the generator).
Dropout is the identity in eval mode, as in the original.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import torch
from torch import nn

from pipeline.errors import CorruptWeights
from pipeline.networks import safe_pickle
from pipeline.networks.state_dict import load_strictly

RESNET50_LAYERS = (3, 4, 14, 3)
EMBEDDING_SIZE = 512


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)


class SEBlock(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction),
            nn.PReLU(),
            nn.Linear(channels // reduction, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels = x.shape[:2]
        return x * self.fc(self.avg_pool(x).view(batch, channels)).view(batch, channels, 1, 1)


class IRBlock(nn.Module):
    """BN -> conv3×3 -> BN -> PReLU -> conv3×3 (stride) -> BN [-> SE], plus the shortcut, then the same PReLU."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1, use_se: bool = True):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, in_channels)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.prelu = nn.PReLU()
        self.conv2 = conv3x3(in_channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels))
        self.se = SEBlock(channels) if use_se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.prelu(self.bn1(self.conv1(self.bn0(x))))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        residual = x if self.downsample is None else self.downsample(x)
        return self.prelu(out + residual)


class ArcFaceResNet(nn.Module):
    def __init__(self, layers: tuple[int, ...] = RESNET50_LAYERS, use_se: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.prelu = nn.PReLU()
        self.maxpool = nn.MaxPool2d(2, 2)
        widths, strides = (64, 128, 256, 512), (1, 2, 2, 2)
        in_channels = 64
        for index, (count, width, stride) in enumerate(zip(layers, widths, strides), start=1):
            blocks = [IRBlock(in_channels, width, stride, use_se)]
            blocks += [IRBlock(width, width, 1, use_se) for _ in range(count - 1)]
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
            in_channels = width
        self.bn2 = nn.BatchNorm2d(512)
        self.dropout = nn.Dropout()
        self.fc = nn.Linear(512 * 7 * 7, EMBEDDING_SIZE)
        self.bn3 = nn.BatchNorm1d(EMBEDDING_SIZE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.prelu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.bn2(x))
        return self.bn3(self.fc(x.flatten(1)))


def from_state_dict(state: dict) -> ArcFaceResNet:
    """An ArcFaceResNet with the checkpoint's block counts and SE setting."""
    layers = []
    for index in range(1, 5):
        blocks = {int(m.group(1)) for key in state if (m := re.match(rf"layer{index}\.(\d+)\.", key))}
        layers.append(max(blocks) + 1 if blocks else 0)
    use_se = any(".se.fc." in key for key in state)
    if 0 in layers:
        return ArcFaceResNet(RESNET50_LAYERS, use_se)  # strict loading will name what is wrong
    return ArcFaceResNet(tuple(layers), use_se)


def load(path: Path, device: str = "cpu", name: str = "arcface_simswap") -> ArcFaceResNet:
    """SimSwap's ArcFace from `arcface_checkpoint.tar` in any of its forms, in eval mode."""
    state = read_state_dict(path)
    return load_strictly(from_state_dict(state), state, name).to(device).eval()


def read_state_dict(path: Path) -> dict:
    """Tensors of SimSwap's `arcface_checkpoint.tar` in any of its forms, without running its code.

    Accepted: the whole pickled `models.arcface_models.ResNet` (2023 on); the older
    dict whose `model` is a DataParallel around it; a TorchScript export (only its
    parameters are taken); a plain state_dict. Pickles go through the restricted
    unpickler of `pipeline.networks.safe_pickle`.
    """
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            is_torchscript = any(n.endswith("constants.pkl") or "/code/" in n for n in archive.namelist())
        if is_torchscript:
            try:
                return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
            except Exception as error:  # torch raises many types for a bad file
                raise CorruptWeights(f"{path.name} is not a readable TorchScript file ({type(error).__name__})") from None
    try:
        content = safe_pickle.load_restricted(path, ("models", "torch.nn"))
    except safe_pickle.UnsafePickle as error:
        raise CorruptWeights(f"{path.name} was refused: {error}") from None
    except Exception as error:  # torch raises many types for a bad file
        raise CorruptWeights(f"{path.name} is not a readable checkpoint ({type(error).__name__})") from None
    if isinstance(content, dict) and not all(isinstance(v, torch.Tensor) for v in content.values()):
        content = content.get("model", content.get("state_dict", content))
    if safe_pickle.is_module_record(content):
        content = safe_pickle.module_state_dict(safe_pickle.unwrap_data_parallel(content))
    if not isinstance(content, dict) or not all(isinstance(v, torch.Tensor) for v in content.values()):
        raise CorruptWeights(f"{path.name} holds neither an ArcFace module nor a state_dict")
    return {key.removeprefix("module."): value for key, value in content.items()}
