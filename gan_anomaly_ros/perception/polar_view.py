"""A part map in polar cells (ROS-free; preprocessing ``map_projection="polar"``).

The map modes (part_heights.py, part_colour.py) bin the part into a square grid in its box
frame. For a turned part (a flange, a disc, a ring) a polar grid suits better: rows are the
radius from the box centre (0 to half the map's side: the circle the square holds), columns the
angle about it (-180 to 180 degrees from the box's x axis). Concentric features (turning
rings, grooves, chamfers) become straight rows, and turning the part (a brushed highlight that
stays with the lights while the part turns under it, a part orientation off by a pitch) becomes
a shift along the rows, which a model's patch memory matches wherever it occurs.

The polar map is resampled (bilinear) from the square map, so empty cells keep their meaning
(table or the part's mean colour) and sparse centre cells borrow from their neighbours; a point
of the part finds its polar cell with ``polar_cells`` (the scorer puts the anomaly map back on
the part's points with it, evaluation bins masks with it).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

PROJECTIONS = ("cartesian", "polar")


@lru_cache(maxsize=8)
def _square_coordinates(size: int) -> np.ndarray:
    """2 x size x size: the square map's (row, col) index of every polar cell's centre."""
    radius = (np.arange(size) + 0.5) / size * 0.5            # in map sides
    angle = -np.pi + (np.arange(size) + 0.5) / size * 2.0 * np.pi
    r, a = np.meshgrid(radius, angle, indexing="ij")
    col = (r * np.cos(a) + 0.5) * size - 0.5
    row = (r * np.sin(a) + 0.5) * size - 0.5
    return np.stack([row, col])


def to_polar(square: np.ndarray) -> np.ndarray:
    """A square map (S x S, or C x S x S) -> the same in polar cells (rows: radius, columns:
    angle), float32."""
    square = np.asarray(square, np.float32)
    if square.ndim == 2:
        return to_polar(square[None])[0]
    coordinates = _square_coordinates(square.shape[-1])
    return np.stack([ndimage.map_coordinates(channel, coordinates, order=1, mode="nearest")
                     for channel in square]).astype(np.float32)


def polar_cells(local_xy: np.ndarray, extent: float, size: int) -> np.ndarray:
    """Flat polar cell index (row * size + col) of points in the part's box frame (N x 2,
    metres) for a map of side ``extent``; points beyond its circle go to the outermost row."""
    xy = np.asarray(local_xy, np.float64)
    radius = np.hypot(xy[:, 0], xy[:, 1]) / (0.5 * float(extent))
    row = np.clip((radius * size).astype(np.int64), 0, size - 1)
    angle = (np.arctan2(xy[:, 1], xy[:, 0]) + np.pi) / (2.0 * np.pi)
    col = np.clip((angle * size).astype(np.int64), 0, size - 1)
    return row * size + col
