"""Unmask mode's two trainable networks (path (a)): where is the mask, and what is under it.

Both work on an aligned face crop (the dataset's template, `dataset.TRAIN_SIZE`
square by default) with RGB in [-1, 1], and are fully convolutional: any side
that is a multiple of `SIZE_MULTIPLE` works, on the CPU or a GPU.

- `MaskSegmenter`: a small U-Net. In: the face, N×3×S×S. Out: N×1×S×S logits
  of "covered by a face mask".
- `LowerFaceInpainter`: an encoder-decoder of gated convolutions (Yu et al.,
  "Free-Form Image Inpainting with Gated Convolution", 2019), dilated in the
  bottleneck so the hole's centre sees the eyes and cheeks, with skip
  connections for sharp edges at the hole's border. In: the face with the hole
  set to 0 plus the hole mask, N×4×S×S. Out: N×3×S×S RGB in [-1, 1] (tanh)
  over the whole crop; `composite` keeps the input outside the hole.

Each is built from a small config dict (kept in the checkpoint, see `checkpoint.py`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

SIZE_MULTIPLE = 16  # crops must have a side divisible by this (a 5-level segmenter halves it four times)
GROUP_NORM_GROUPS = 4  # the segmenter's normalisation; independent of the batch size, so train and eval agree
BOTTLENECK_DILATIONS = (2, 4, 8, 16)  # the inpainter's dilated gated convolutions at 1/4 resolution


@dataclass(frozen=True)
class SegmenterConfig:
    width: int = 16  # channels of the first level; each level below doubles them
    levels: int = 4

    def check(self) -> None:
        if self.width < GROUP_NORM_GROUPS or self.width % GROUP_NORM_GROUPS or not 2 <= self.levels <= 5:
            raise ValueError(f"segmenter width must be a multiple of {GROUP_NORM_GROUPS} and levels 2-5, not {self}")


@dataclass(frozen=True)
class InpainterConfig:
    width: int = 32  # channels at full resolution; 2× at 1/2, 4× at 1/4 (the bottleneck)

    def check(self) -> None:
        if self.width < 2 or self.width % 2:
            raise ValueError(f"inpainter width must be an even number of at least 2, not {self.width}")


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3×3 convolutions, each with group normalisation and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.GroupNorm(GROUP_NORM_GROUPS, out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.GroupNorm(GROUP_NORM_GROUPS, out_channels),
        nn.ReLU(inplace=True),
    )


class MaskSegmenter(nn.Module):
    """U-Net: `levels` resolutions, max-pooled down, transposed-convolution up, skip connections by concatenation."""

    def __init__(self, config: SegmenterConfig = SegmenterConfig()):
        super().__init__()
        config.check()
        self.config = config
        widths = [config.width * 2**level for level in range(config.levels)]
        self.down = nn.ModuleList([conv_block(3, widths[0])] + [conv_block(a, b) for a, b in zip(widths, widths[1:])])
        self.upsample = nn.ModuleList([nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(widths, widths[1:])])
        self.up = nn.ModuleList([conv_block(2 * a, a) for a in widths[:-1]])
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        skips = []
        x = image
        for index, block in enumerate(self.down):
            x = block(x if index == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for level in reversed(range(len(self.up))):
            x = self.up[level](torch.cat([skips[level], self.upsample[level](x)], dim=1))
        return self.head(x)


class GatedConv2d(nn.Module):
    """A convolution whose output is ELU(features) × sigmoid(gate): the gate learns, per pixel and channel, what is valid."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, dilation: int = 1):
        super().__init__()
        padding = dilation * (kernel - 1) // 2
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, kernel, stride, padding, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gate = self.conv(x).chunk(2, dim=1)
        return F.elu(features) * torch.sigmoid(gate)


class GatedUp(nn.Module):
    """Nearest-neighbour ×2, then a gated convolution over the upsampled features and the encoder's skip."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.reduce = GatedConv2d(in_channels, out_channels)
        self.merge = GatedConv2d(out_channels + skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.reduce(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return self.merge(torch.cat([x, skip], dim=1))


class LowerFaceInpainter(nn.Module):
    """Gated-convolution encoder-decoder: full → 1/2 → 1/4 resolution, dilated bottleneck, and back up."""

    def __init__(self, config: InpainterConfig = InpainterConfig()):
        super().__init__()
        config.check()
        self.config = config
        w = config.width
        self.encode_full = nn.Sequential(GatedConv2d(4, w, kernel=5), GatedConv2d(w, w))
        self.encode_half = nn.Sequential(GatedConv2d(w, 2 * w, stride=2), GatedConv2d(2 * w, 2 * w))
        self.encode_quarter = nn.Sequential(GatedConv2d(2 * w, 4 * w, stride=2), GatedConv2d(4 * w, 4 * w))
        self.bottleneck = nn.Sequential(
            *[GatedConv2d(4 * w, 4 * w, dilation=d) for d in BOTTLENECK_DILATIONS], GatedConv2d(4 * w, 4 * w)
        )
        self.up_half = GatedUp(4 * w, 2 * w, 2 * w)
        self.up_full = GatedUp(2 * w, w, w)
        self.to_rgb = nn.Conv2d(w, 3, 3, padding=1)

    def forward(self, masked: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The predicted face (N×3×S×S in [-1, 1]) from the face in [-1, 1] and the hole (N×1×S×S, 1 = hole).

        Whatever the input holds inside the hole is ignored: it is set to 0 here.
        """
        full = self.encode_full(torch.cat([masked * (1 - mask), mask], dim=1))
        half = self.encode_half(full)
        x = self.bottleneck(self.encode_quarter(half))
        x = self.up_full(self.up_half(x, half), full)
        return torch.tanh(self.to_rgb(x))


def composite(masked: torch.Tensor, prediction: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The input outside the hole, the prediction inside it (a soft mask blends)."""
    return masked * (1 - mask) + prediction * mask


def build_segmenter(config: dict) -> MaskSegmenter:
    return MaskSegmenter(SegmenterConfig(**config))


def build_inpainter(config: dict) -> LowerFaceInpainter:
    return LowerFaceInpainter(InpainterConfig(**config))


def config_dict(network: MaskSegmenter | LowerFaceInpainter) -> dict:
    """The plain dict a network is rebuilt from."""
    return asdict(network.config)
