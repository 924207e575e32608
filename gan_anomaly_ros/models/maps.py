"""Per-pixel anomaly maps shared by reconstruction-based models."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def gaussian_blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur B x S x S maps; single-pixel noise in a residual is not a defect."""
    if sigma <= 0:
        return maps
    radius = max(1, int(math.ceil(3 * sigma)))
    offsets = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = maps.unsqueeze(1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return x.squeeze(1)


def residual_map(images: torch.Tensor, reconstructions: torch.Tensor, sigma: float) -> torch.Tensor:
    """Mean absolute residual over channels, smoothed: B x C x S x S -> B x S x S."""
    return gaussian_blur((images - reconstructions).abs().mean(dim=1), sigma)


def default_sigma(size: int) -> float:
    """Smoothing that scales with the input: 2 px at 64 x 64."""
    return size / 32.0
