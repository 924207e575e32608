"""The found part -> its orthographic colour view: the part's colour in its own frame
(ROS-free; preprocessing mode "part_colour").

The part crop (the RGB-D default) sees the part through the camera: a part at the edge of
the field of view shows its side walls and a changing perspective, and a scratch on it is
lost among them (image AUROC 0.5 on scratches anywhere on the table against 0.9 centred,
benchmarks/part_crop_placement.py). Here the part's points are binned into the same grid as
the relative-height map (part_heights.part_cells: the box frame, the footprint plus 10 %,
orthographic), each cell the mean colour of its points, so position and perspective drop
out; the yaw stays. benchmarks/orthographic_colour.py measured it: scratches anywhere 0.74.

Every part is standardised by itself (the occupied cells' mean per channel, one spread over
all channels: a part under brighter light reads the same) and mapped to [-1, 1] over +-3
spreads; cells without points (the table around the part, depth dropouts) are 0, the part's
mean colour, so a hole in the depth is not a dark spot. Colour only: run a height model beside
it for dents and bumps (graph geometry_model, fusion.py).
"""

from __future__ import annotations

import numpy as np

from .part_finder import PartObservation
from .part_heights import part_cells

# Standardised colour is mapped to [-1, 1] over this many spreads.
COLOUR_SPREADS = 3.0


def part_colour_map(part: PartObservation, rgb: np.ndarray, size: int = 64) -> np.ndarray:
    """3 x size x size float32 in [-1, 1]: the standardised mean colour per cell of an
    INSPECTED part (see the module docstring); rows and columns as part_height_map's."""
    if not part.inspected:
        raise ValueError(f"no part to map: {part.status.name} ({part.detail})")
    rows, cols = part.pixels
    if len(rows) != len(part.points):
        raise ValueError("the part's pixels and points do not match")
    cells = part_cells(part, size)
    colours = np.asarray(rgb)[rows, cols].astype(np.float64)
    if colours.ndim != 2 or colours.shape[1] != 3:
        raise ValueError(f"part_colour needs an H x W x 3 colour image, got {np.shape(rgb)}")
    count = np.bincount(cells, minlength=size * size)
    occupied = count > 0
    mean = np.zeros((3, size * size))
    for channel in range(3):
        total = np.bincount(cells, colours[:, channel], minlength=size * size)
        mean[channel, occupied] = total[occupied] / count[occupied]
    part_cells_colour = mean[:, occupied]
    centre = part_cells_colour.mean(axis=1, keepdims=True)
    spread = max(float(part_cells_colour.std()), 1e-6)
    standardised = np.where(occupied, (mean - centre) / spread, 0.0)
    return np.clip(standardised / COLOUR_SPREADS, -1.0, 1.0).reshape(3, size, size).astype(
        np.float32)
