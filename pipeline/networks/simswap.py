"""SimSwap generators in the layout of neuralchen/SimSwap (`Generator_Adain_Upsample`).

Two published variants, both built with n_blocks=9, deep=False, latent 512:
- `simswap_224` (`checkpoints/people/latest_net_G.pth`, models/fs_networks.py):
  `first_layer` (64 ch) -> `down1..3` -> `BottleNeck.0-8` -> `up3..1` -> `last_layer`;
- `simswap_512` (`512/550000_net_G.pth`, models/fs_networks_512.py): a 32-channel
  `first_layer`, plus `down0` and `up0`.

Key layout: `first_layer.1` conv, `.2` BatchNorm; `downK.0` conv, `.1` BN;
`upK.1` conv, `.2` BN (index 0 is the parameterless upsample);
`BottleNeck.i.conv1.1`/`conv2.1` convs (index 0 is a reflection pad) and
`BottleNeck.i.style1.linear`/`style2.linear` (512 -> 2·512); `last_layer.1`.

`forward(image, latent)`: `image` N×3×S×S RGB in [0, 1] (SimSwap feeds the
aligned crop without ImageNet normalisation), `latent` N×512 the identity
embedding (SimSwap passes the ArcFace embedding L2-normalised). Returns
N×3×S×S in [0, 1]: `(tanh(x) + 1) / 2`, as the original.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pipeline.networks.state_dict import load_strictly, read_state_dict

LATENT_SIZE = 512
N_BLOCKS = 9


class InstanceNorm(nn.Module):
    """Per-channel normalisation over H×W without affine parameters (epsilon 1e-8, inside the rsqrt)."""

    def __init__(self, epsilon: float = 1e-8):
        super().__init__()
        self.epsilon = epsilon

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - torch.mean(x, (2, 3), True)
        return x * torch.rsqrt(torch.mean(x * x, (2, 3), True) + self.epsilon)


class ApplyStyle(nn.Module):
    """x·(1 + scale) + shift, with (scale, shift) = linear(latent)."""

    def __init__(self, latent_size: int, channels: int):
        super().__init__()
        self.linear = nn.Linear(latent_size, channels * 2)

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        style = self.linear(latent).view(-1, 2, x.size(1), 1, 1)
        return x * (style[:, 0] + 1.0) + style[:, 1]


class AdaINResidualBlock(nn.Module):
    """`ResnetBlock_Adain` with reflection padding: two styled 3×3 convs, ReLU between, identity skip."""

    def __init__(self, dim: int, latent_size: int):
        super().__init__()
        self.conv1 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), InstanceNorm())
        self.style1 = ApplyStyle(latent_size, dim)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), InstanceNorm())
        self.style2 = ApplyStyle(latent_size, dim)

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.style1(self.conv1(x), latent))
        y = self.style2(self.conv2(y), latent)
        return x + y


def down(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, 2, 1), nn.BatchNorm2d(out_channels), nn.ReLU())


def up(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Conv2d(in_channels, out_channels, 3, 1, 1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class SimSwapGenerator(nn.Module):
    """`Generator_Adain_Upsample(3, 3, 512, n_blocks=9, deep=False)`; `size=512` adds `down0`/`up0`."""

    def __init__(self, size: int = 224, latent_size: int = LATENT_SIZE, n_blocks: int = N_BLOCKS):
        super().__init__()
        if size not in (224, 512):
            raise ValueError("SimSwap generators come in sizes 224 and 512")
        self.size = size
        first = 64 if size == 224 else 32
        self.first_layer = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, first, 7), nn.BatchNorm2d(first), nn.ReLU())
        if size == 512:
            self.down0 = down(32, 64)
        self.down1 = down(64, 128)
        self.down2 = down(128, 256)
        self.down3 = down(256, 512)
        self.BottleNeck = nn.Sequential(*(AdaINResidualBlock(512, latent_size) for _ in range(n_blocks)))
        self.up3 = up(512, 256)
        self.up2 = up(256, 128)
        self.up1 = up(128, 64)
        if size == 512:
            self.up0 = up(64, 32)
        self.last_layer = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(first, 3, 7), nn.Tanh())

    def forward(self, image: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        x = self.first_layer(image)
        if self.size == 512:
            x = self.down0(x)
        x = self.down3(self.down2(self.down1(x)))
        for block in self.BottleNeck:
            x = block(x, latent)
        x = self.up1(self.up2(self.up3(x)))
        if self.size == 512:
            x = self.up0(x)
        return (self.last_layer(x) + 1) / 2


def load(path: Path, device: str = "cpu", name: str = "simswap_224") -> SimSwapGenerator:
    """SimSwap's generator (`simswap_224` or `simswap_512`, as `name` says), in eval mode."""
    state = read_state_dict(path)
    return load_strictly(SimSwapGenerator(size=224 if name == "simswap_224" else 512), state, name).to(device).eval()
