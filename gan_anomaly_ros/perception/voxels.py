"""A part's point cloud -> a fixed-size voxel grid, the input of the 3D models (ROS-free).

The points must already be in the part's own frame: origin at the centre of the part's
bounding box, z along the supporting plane's normal (up, away from the table), x and y along
the box's horizontal axes, metres. ``extent`` is the side of the cube the grid covers (the
caller passes the box's largest side times a small margin), so every part fills the grid
whatever its size: the grid is scale-normalised. The cube is centred on the origin,
``[-extent / 2, extent / 2)`` on each axis, with ``resolution`` voxels of side
``extent / resolution`` per axis; points outside it are dropped.

Grid layout: ``grid[z, y, x]`` (index order z, y, x, numpy C order), so ``grid[k]`` is the
horizontal slice at height k (k = 0 at the bottom, nearest the table) and a batch of grids is
the B x 1 x D x H x W tensor that torch's Conv3d takes, with depth D = z.

Kinds:

- ``occupancy``: 1 where a voxel holds at least one point, else 0.
- ``tsdf``: a projective truncated signed distance for one top-down view. For every (x, y)
  column the observed surface height h is the highest z of the column's points, and a voxel
  at height z_c holds ``clip((h - z_c) / (truncation_voxels * voxel_size), -1, 1)``:
  **positive below the surface** (inside the part, or hidden behind it), **negative above it**
  (free space the camera saw through), 0 on the surface. A column with no point is free space,
  -1 everywhere (``EMPTY``). Unlike occupancy, the values carry the surface's sub-voxel
  height: a dent of a third of a voxel changes them.
- ``relative_height`` (``height_field_grid``): the same truncated distance, of the part's
  relative-height map (part_heights.py) instead of its points: x and y span the part's
  footprint, z spans +-the height range about the part's top face (level centres from -1 to 1
  in units of the range), so a 32-level grid over +-8 mm has 0.5 mm levels where a cube over a
  100 mm part has 3.4 mm voxels. The geometry-only defects of benchmarks/geometry_defects.py
  (1.5-4 mm dents and bumps) are lost in the cube's voxels and kept in these levels.
"""

from __future__ import annotations

import numpy as np

KINDS = ("tsdf", "occupancy", "relative_height")
# The kinds voxel_grid makes from points (relative_height comes from a height map).
POINT_KINDS = ("tsdf", "occupancy")
# The value of a voxel that holds nothing: free space in a tsdf, unoccupied in occupancy.
EMPTY = {"tsdf": -1.0, "occupancy": 0.0, "relative_height": -1.0}

__all__ = ["KINDS", "POINT_KINDS", "EMPTY", "voxel_grid", "voxel_centres", "column_tsdf",
           "height_field_grid"]


def voxel_centres(extent: float, resolution: int) -> np.ndarray:
    """The centre coordinate (metres) of each of the ``resolution`` voxels along one axis."""
    size = float(extent) / int(resolution)
    return (np.arange(int(resolution), dtype=np.float64) + 0.5) * size - float(extent) / 2


def _check(points, extent, resolution, kind, truncation_voxels) -> np.ndarray:
    if kind not in POINT_KINDS:
        raise ValueError(f"voxel kind must be one of {POINT_KINDS}, got {kind!r} (a "
                         "relative_height grid is made from a height map: height_field_grid)")
    if (not isinstance(resolution, (int, np.integer)) or isinstance(resolution, bool)
            or resolution < 8):
        raise ValueError(f"resolution must be an integer >= 8, got {resolution!r}")
    for name, value in (("extent", extent), ("truncation_voxels", truncation_voxels)):
        try:
            good = np.isfinite(float(value)) and float(value) > 0
        except (TypeError, ValueError):
            good = False
        if not good:
            raise ValueError(f"{name} must be a finite number > 0 (extent in metres, "
                             f"truncation in voxels), got {value!r}")
    points = np.asarray(points)
    if points.size == 0 and points.ndim <= 1:  # [] : an empty cloud
        points = points.reshape(0, 3)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be an N x 3 array (x, y, z in the part's frame), got "
                         f"shape {points.shape}")
    if (not np.issubdtype(points.dtype, np.number)
            or np.issubdtype(points.dtype, np.complexfloating)):
        raise ValueError(f"points must be real numbers, got dtype {points.dtype}")
    points = points.astype(np.float64, copy=False)
    if not np.isfinite(points).all():
        raise ValueError("points contain NaN or infinity: drop invalid depth pixels first")
    return points


def voxel_grid(points, extent: float, resolution: int = 32, kind: str = "tsdf",
               truncation_voxels: float = 2.0) -> np.ndarray:
    """A resolution^3 float32 grid ``[z, y, x]`` of a part's points (see the module docstring
    for the frame, the layout and the two kinds). An empty cloud gives an all-empty grid."""
    points = _check(points, extent, resolution, kind, truncation_voxels)
    resolution, extent = int(resolution), float(extent)
    voxel = extent / resolution
    # Voxel indices; half-open cube [-extent/2, extent/2) so the index is always < resolution.
    scaled = (points + extent / 2) / voxel
    inside = ((scaled >= 0) & (scaled < resolution)).all(axis=1)
    scaled = scaled[inside]
    index = np.minimum(scaled.astype(np.int64), resolution - 1)  # floor; values are >= 0
    ix, iy, iz = index[:, 0], index[:, 1], index[:, 2]
    if kind == "occupancy":
        grid = np.zeros((resolution,) * 3, np.float32)
        grid[iz, iy, ix] = 1.0
        return grid
    # tsdf: the highest point per (y, x) column, then one broadcast over the column's heights.
    columns = iy * resolution + ix
    height = np.full(resolution * resolution, -np.inf)
    np.maximum.at(height, columns, points[inside, 2])
    height = height.reshape(resolution, resolution)
    values = column_tsdf(height, voxel_centres(extent, resolution),
                         float(truncation_voxels) * voxel)
    observed = np.isfinite(height)[None]
    return np.where(observed, values, EMPTY["tsdf"]).astype(np.float32)


def column_tsdf(height: np.ndarray, centres: np.ndarray, truncation: float) -> np.ndarray:
    """Surface heights per (y, x) column and the levels' centres (same unit) -> the
    ``[z, y, x]`` truncated signed distance ``clip((h - z_c) / truncation, -1, 1)``: one
    broadcast over the columns' levels, positive below the surface."""
    values = (height[None] - centres[:, None, None]) / truncation
    return np.clip(values, -1.0, 1.0)


def height_field_grid(heights: np.ndarray, truncation_voxels: float = 2.0) -> np.ndarray:
    """An R x R height map in [-1, 1] (part_heights.part_height_map) -> the R^3 float32 grid
    ``[z, y, x]`` of its truncated signed distance: ``clip((h - z_c) / truncation, -1, 1)``
    with R level centres z_c from -1 to 1, positive below the surface, as ``tsdf``."""
    heights = np.asarray(heights, np.float64)
    if heights.ndim != 2 or heights.shape[0] != heights.shape[1] or heights.shape[0] < 8:
        raise ValueError(f"heights must be a square map of at least 8 x 8, got {heights.shape}")
    resolution = heights.shape[0]
    centres = voxel_centres(2.0, resolution)                  # level centres in [-1, 1]
    truncation = float(truncation_voxels) * 2.0 / resolution
    return column_tsdf(heights, centres, truncation).astype(np.float32)
