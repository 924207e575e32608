"""The found part -> its voxel grid: the part's points moved into the part's own frame (box
centre, box axes, z up from the plane) and voxelised at a fixed resolution (ROS-free).

Kinds "tsdf" and "occupancy" are cubes scale-normalised to the part's largest side.
"relative_height" is the truncated distance of the part's relative-height map
(part_heights.py): the footprint across, +-height_range_m about the top face up, so its
levels are fractions of a millimetre where a cube's are millimetres (see voxels.py)."""

from __future__ import annotations

import numpy as np

from .part_finder import PartObservation, part_frame_points
from .part_heights import part_height_map, part_map_extent
from .voxels import height_field_grid, voxel_grid

__all__ = ["part_frame_points", "part_grid_extent", "part_voxel_grid", "voxel_sizes"]

# The grid spans the part's largest box side times this: a margin so the rim stays inside.
GRID_MARGIN = 1.1


def part_grid_extent(part: PartObservation) -> float:
    return float(max(part.size) * GRID_MARGIN)


def voxel_sizes(part: PartObservation, resolution: int, kind: str,
                height_range_m: float) -> tuple:
    """(horizontal, vertical) side of one voxel in metres: equal for the cubic kinds."""
    if kind == "relative_height":
        return part_map_extent(part.size) / resolution, 2.0 * height_range_m / resolution
    side = part_grid_extent(part) / resolution
    return side, side


def part_voxel_grid(part: PartObservation, resolution: int = 32, kind: str = "relative_height",
                    height_range_m: float = 0.008) -> np.ndarray:
    """resolution^3 float32 grid [z, y, x] of an INSPECTED part (see voxels.py)."""
    if not part.inspected:
        raise ValueError(f"no part to voxelise: {part.status.name} ({part.detail})")
    if kind == "relative_height":
        return height_field_grid(part_height_map(part, resolution, height_range_m))
    return voxel_grid(part_frame_points(part), part_grid_extent(part), resolution, kind)
