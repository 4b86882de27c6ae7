"""RetinaFace in the state_dict layout of biubug6/Pytorch_Retinaface (DESIGN.md contract 8).

The modules below carry that project's exact parameter names, so its published
checkpoints (`mobilenet0.25_Final.pth`, `Resnet50_Final.pth`) load strictly.
`RetinaFace.forward` takes what the original takes (an N×3×H×W float tensor:
BGR pixels minus (104, 117, 123)) and returns what the original returns in its
test phase: box regressions N×A×4, softmaxed class scores N×A×2 and landmark
regressions N×A×10. The detector that decodes them, without torch, is
`pipeline.detection.retinaface`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.networks.retinaface_config import CONFIGS, MOBILENET_CONFIG, RESNET50_CONFIG, RetinaFaceConfig
from pipeline.errors import CorruptWeights
from pipeline.networks.state_dict import load_strictly, read_state_dict


def conv_bn(inp: int, oup: int, stride: int = 1, leaky: float = 0.0) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 3, stride, 1, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


def conv_bn_no_relu(inp: int, oup: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup))


def conv_bn_1x1(inp: int, oup: int, leaky: float = 0.0) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


def conv_dw(inp: int, oup: int, stride: int, leaky: float = 0.1) -> nn.Sequential:
    """Depthwise 3×3 then pointwise 1×1, each with batch norm and leaky ReLU."""
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
        nn.BatchNorm2d(inp),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


class MobileNetV1Body(nn.Module):
    """MobileNet-0.25 trunk; returns the stride 8, 16 and 32 feature maps."""

    def __init__(self):
        super().__init__()
        self.stage1 = nn.Sequential(
            conv_bn(3, 8, 2, leaky=0.1),
            conv_dw(8, 16, 1),
            conv_dw(16, 32, 2),
            conv_dw(32, 32, 1),
            conv_dw(32, 64, 2),
            conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(conv_dw(64, 128, 2), *[conv_dw(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(conv_dw(128, 256, 2), conv_dw(256, 256, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        return [c1, c2, self.stage3(c2)]


class Bottleneck(nn.Module):
    """torchvision's ResNet bottleneck, with its parameter names."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50Body(nn.Module):
    """ResNet-50 trunk without its classifier; returns layer2, layer3 and layer4."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes = 64
        self.layer1 = self._make_layer(64, 3, 1)
        self.layer2 = self._make_layer(128, 4, 2)
        self.layer3 = self._make_layer(256, 6, 2)
        self.layer4 = self._make_layer(512, 3, 2)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4)
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer2(self.layer1(x))
        c3 = self.layer3(c2)
        return [c2, c3, self.layer4(c3)]


class FPN(nn.Module):
    def __init__(self, in_channels_list: list[int], out_channels: int):
        super().__init__()
        leaky = 0.1 if out_channels <= 64 else 0.0
        self.output1 = conv_bn_1x1(in_channels_list[0], out_channels, leaky)
        self.output2 = conv_bn_1x1(in_channels_list[1], out_channels, leaky)
        self.output3 = conv_bn_1x1(in_channels_list[2], out_channels, leaky)
        self.merge1 = conv_bn(out_channels, out_channels, leaky=leaky)
        self.merge2 = conv_bn(out_channels, out_channels, leaky=leaky)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        out1 = self.output1(features[0])
        out2 = self.output2(features[1])
        out3 = self.output3(features[2])
        out2 = self.merge2(out2 + F.interpolate(out3, size=out2.shape[2:], mode="nearest"))
        out1 = self.merge1(out1 + F.interpolate(out2, size=out1.shape[2:], mode="nearest"))
        return [out1, out2, out3]


class SSH(nn.Module):
    """Single-stage headless context module: 3×3, 5×5 and 7×7 receptive fields."""

    def __init__(self, in_channel: int, out_channel: int):
        super().__init__()
        leaky = 0.1 if out_channel <= 64 else 0.0
        self.conv3X3 = conv_bn_no_relu(in_channel, out_channel // 2)
        self.conv5X5_1 = conv_bn(in_channel, out_channel // 4, leaky=leaky)
        self.conv5X5_2 = conv_bn_no_relu(out_channel // 4, out_channel // 4)
        self.conv7X7_2 = conv_bn(out_channel // 4, out_channel // 4, leaky=leaky)
        self.conv7x7_3 = conv_bn_no_relu(out_channel // 4, out_channel // 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch5_1 = self.conv5X5_1(x)
        branch7_2 = self.conv7X7_2(branch5_1)
        out = torch.cat([self.conv3X3(x), self.conv5X5_2(branch5_1), self.conv7x7_3(branch7_2)], dim=1)
        return F.relu(out)


class Head(nn.Module):
    """A 1×1 convolution whose output is flattened to N×(H·W·anchors)×values."""

    def __init__(self, in_channels: int, values: int, num_anchors: int = 2):
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(in_channels, num_anchors * values, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1).contiguous()
        return out.view(out.shape[0], -1, self.values)


class RetinaFace(nn.Module):
    def __init__(self, config: RetinaFaceConfig = MOBILENET_CONFIG):
        super().__init__()
        self.config = config
        self.body = MobileNetV1Body() if config.backbone == "mobilenet0.25" else ResNet50Body()
        channels = [config.in_channel * 2, config.in_channel * 4, config.in_channel * 8]
        self.fpn = FPN(channels, config.out_channel)
        self.ssh1 = SSH(config.out_channel, config.out_channel)
        self.ssh2 = SSH(config.out_channel, config.out_channel)
        self.ssh3 = SSH(config.out_channel, config.out_channel)
        self.ClassHead = nn.ModuleList([Head(config.out_channel, 2) for _ in range(3)])
        self.BboxHead = nn.ModuleList([Head(config.out_channel, 4) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([Head(config.out_channel, 10) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        fpn = self.fpn(self.body(x))
        features = [self.ssh1(fpn[0]), self.ssh2(fpn[1]), self.ssh3(fpn[2])]
        boxes = torch.cat([head(f) for head, f in zip(self.BboxHead, features)], dim=1)
        classes = torch.cat([head(f) for head, f in zip(self.ClassHead, features)], dim=1)
        landmarks = torch.cat([head(f) for head, f in zip(self.LandmarkHead, features)], dim=1)
        return boxes, F.softmax(classes, dim=-1), landmarks


def config_for_state_dict(state_dict: dict[str, torch.Tensor]) -> RetinaFaceConfig:
    """Tell the backbone from the checkpoint's own keys."""
    return RESNET50_CONFIG if any(key.startswith("body.layer1.") for key in state_dict) else MOBILENET_CONFIG


def load_network(path: Path, device: str = "cpu", name: str = "retinaface_mobilenet0.25") -> RetinaFace:
    """The RetinaFace of a checkpoint (biubug6 layout) in eval mode; `name` says which backbone it must hold."""
    state = read_state_dict(path)
    config = config_for_state_dict(state)
    expected = CONFIGS[name]
    if config != expected:
        raise CorruptWeights(f"the checkpoint holds a {config.backbone} RetinaFace, not {name}")
    return load_strictly(RetinaFace(config), state, name).to(device).eval()
