"""perception.preprocessing.normalize_input in torch, for batches, so that an exported model
carries its preprocessing normalisation in its own graph and is fed the raw crop.

Keep in step with the numpy version (test_export.py checks they agree to 1e-5). Written with
operations that both torch.onnx.export and torch.jit.trace keep batch-independent: the depth
median is a sort and a gather, not torch.median (which returns the lower of the two middle
values, where np.median averages them).
"""

from __future__ import annotations

import torch
from torch import nn

from ..perception.preprocessing import (PART_MODES, STANDARDIZE_SIGMAS, PreprocessConfig,
                                        PreprocessError)

# standardize(): below this spread an image is flat and becomes all zeros.
FLAT_SPREAD = 1e-6


def standardize_colour(colour: torch.Tensor) -> torch.Tensor:
    """B x C x S x S colour in [-1, 1] -> per image mean 0, 1/3 standard deviation, clipped."""
    mean = colour.mean(dim=(1, 2, 3), keepdim=True)
    centred = colour - mean
    spread = centred.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()  # np.std: ddof 0
    scaled = (centred / (STANDARDIZE_SIGMAS * spread.clamp_min(FLAT_SPREAD))).clamp(-1.0, 1.0)
    return torch.where(spread < FLAT_SPREAD, torch.zeros_like(scaled), scaled)


def valid_median(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """B x N values -> B x 1 median of each row's valid entries, as np.median (the mean of
    the two middle ones for an even count); rows without a valid entry give +inf."""
    ordered = torch.where(valid, values, torch.full_like(values, float("inf"))).sort(dim=1).values
    count = valid.sum(dim=1, keepdim=True)
    lower = torch.div(count - 1, 2, rounding_mode="floor").clamp_min(0)
    upper = torch.div(count, 2, rounding_mode="floor").clamp_max(values.shape[1] - 1)
    return (ordered.gather(1, lower) + ordered.gather(1, upper)) / 2


def relative_depth(depth_m: torch.Tensor, range_m: float) -> torch.Tensor:
    """B x 1 x S x S depth in metres (0 = invalid) -> depth relative to each image's median
    valid depth over range_m, clipped to [-1, 1], invalid pixels 0 (normalize_depth)."""
    flat = depth_m.flatten(1)
    valid = torch.isfinite(flat) & (flat > 0)
    median = valid_median(flat, valid)
    # Closer than the median (raised relief) is positive, like a height map.
    relative = ((median - flat) / range_m).clamp(-1.0, 1.0)
    return torch.where(valid, relative, torch.zeros_like(relative)).view_as(depth_m)


class InputNormalization(nn.Module):
    """Raw crops (B x C x S x S: colour 0..255, depth metres) -> model inputs in [-1, 1], with
    a checkpoint's preprocessing settings. Inputs made from the part (PART_MODES: height
    maps, part colour views, voxel grids) pass unchanged."""

    def __init__(self, config: PreprocessConfig):
        super().__init__()
        self.identity = config.mode in PART_MODES
        if config.uses_depth and not self.identity and config.depth_range_m is None:
            raise PreprocessError("depth_range_m is not set: training chooses it from the data "
                                  "(relative_depth_range) before preprocessing")
        self.colour_channels = config.colour_channels
        self.standardize = config.normalize == "standardize"
        self.depth_range_m = float(config.depth_range_m) if config.uses_depth and \
            not self.identity else None

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return raw
        colour = raw[:, :self.colour_channels] / 127.5 - 1.0
        if self.standardize:
            colour = standardize_colour(colour)
        if self.depth_range_m is None:
            return colour
        depth = raw[:, self.colour_channels:self.colour_channels + 1]
        return torch.cat([colour, relative_depth(depth, self.depth_range_m)], dim=1)
