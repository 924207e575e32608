"""The found part -> its voxel grid: the part's points moved into the part's own frame (box
centre, box axes, z up from the plane) and voxelised at a fixed resolution, scale-normalised
to the part's largest side (ROS-free)."""

from __future__ import annotations

import numpy as np

from .part_finder import PartObservation
from .voxels import voxel_grid

# The grid spans the part's largest box side times this: a margin so the rim stays inside.
GRID_MARGIN = 1.1


def part_frame_points(part: PartObservation) -> np.ndarray:
    """The part's points in its box frame (metres): origin at the box centre, axes the box's."""
    return (part.points.astype(np.float64) - part.centroid) @ part.rotation


def part_grid_extent(part: PartObservation) -> float:
    return float(max(part.size) * GRID_MARGIN)


def part_voxel_grid(part: PartObservation, resolution: int = 32, kind: str = "tsdf"
                    ) -> np.ndarray:
    """resolution^3 float32 grid [z, y, x] of an INSPECTED part (see voxels.py)."""
    if not part.inspected:
        raise ValueError(f"no part to voxelise: {part.status.name} ({part.detail})")
    return voxel_grid(part_frame_points(part), part_grid_extent(part), resolution, kind)
