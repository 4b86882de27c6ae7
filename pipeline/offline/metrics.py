"""Image quality measures for unmask mode's networks: SSIM (also a training loss), PSNR, L1, IoU.

SSIM is Wang et al. 2004's: an 11×11 Gaussian window with σ 1.5, constants
(0.01·L)² and (0.03·L)² for a value range L, computed per channel on the window
positions that fit inside the image ("valid", as in the reference code) and
averaged. Restricted to a region, the SSIM map is averaged over the window
positions whose centre lies in the region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def gaussian_line(device, dtype) -> torch.Tensor:
    """The normalised 1-D Gaussian the SSIM window is the outer product of (11 values)."""
    offsets = torch.arange(SSIM_WINDOW, device=device, dtype=dtype) - (SSIM_WINDOW - 1) / 2
    line = torch.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    return line / line.sum()


def ssim_map(x: torch.Tensor, y: torch.Tensor, value_range: float = 1.0) -> torch.Tensor:
    """Per-pixel SSIM of two N×C×H×W batches: N×C×(H-10)×(W-10)."""
    channels = x.shape[1]
    # The five local statistics in one batch, blurred by the separable window: rows, then columns.
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    line = gaussian_line(x.device, x.dtype)
    blurred = F.conv2d(stacked, line.view(1, 1, 1, -1).expand(5 * channels, 1, 1, SSIM_WINDOW), groups=5 * channels)
    blurred = F.conv2d(blurred, line.view(1, 1, -1, 1).expand(5 * channels, 1, SSIM_WINDOW, 1), groups=5 * channels)
    mean_x, mean_y, mean_xx, mean_yy, mean_xy = blurred.split(channels, dim=1)
    c1, c2 = (SSIM_K1 * value_range) ** 2, (SSIM_K2 * value_range) ** 2
    var_x, var_y, covariance = mean_xx - mean_x**2, mean_yy - mean_y**2, mean_xy - mean_x * mean_y
    return ((2 * mean_x * mean_y + c1) * (2 * covariance + c2)) / ((mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2))


def ssim(x: torch.Tensor, y: torch.Tensor, region: torch.Tensor | None = None, value_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM per image (N), over the whole image or over `region` (N×1×H×W, > 0.5 inside).

    An image whose region holds no window centre gets NaN.
    """
    values = ssim_map(x, y, value_range).mean(dim=1)
    if region is None:
        return values.flatten(1).mean(dim=1)
    margin = SSIM_WINDOW // 2
    inside = (region[:, 0, margin : region.shape[2] - margin, margin : region.shape[3] - margin] > 0.5).to(values.dtype)
    return (values * inside).flatten(1).sum(dim=1) / inside.flatten(1).sum(dim=1)


@dataclass(frozen=True)
class ImageMetrics:
    """How close a result is to its reference over some region."""

    psnr: float  # dB for 8-bit values; inf when identical
    ssim: float  # 1 when identical
    l1: float  # mean absolute difference, values in [0, 1]


def unit_tensor(image: np.ndarray) -> torch.Tensor:
    """An H×W×3 uint8 image as a 1×3×H×W float64 tensor in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].double() / 255.0


def image_metrics(result: np.ndarray, reference: np.ndarray, region: np.ndarray | None = None) -> ImageMetrics:
    """PSNR, SSIM and L1 of an H×W×3 uint8 result against its reference, over the image or a bool H×W region."""
    if result.shape != reference.shape:
        raise ValueError(f"result {result.shape} and reference {reference.shape} differ in shape")
    difference = result.astype(np.float64) - reference.astype(np.float64)
    inside = np.ones(result.shape[:2], bool) if region is None else np.asarray(region, bool)
    if not inside.any():
        return ImageMetrics(math.nan, math.nan, math.nan)
    squared = float((difference[inside] ** 2).mean())
    psnr = math.inf if squared == 0 else 10 * math.log10(255.0**2 / squared)
    l1 = float(np.abs(difference[inside]).mean() / 255.0)
    mask = None if region is None else torch.from_numpy(inside)[None, None]
    similarity = ssim(unit_tensor(result), unit_tensor(reference), mask)
    return ImageMetrics(psnr, float(similarity[0]), l1)


def mask_iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two bool masks (1 when both are empty)."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    union = int((predicted | truth).sum())
    return 1.0 if union == 0 else int((predicted & truth).sum()) / union
