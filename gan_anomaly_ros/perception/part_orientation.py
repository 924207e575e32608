"""The part's yaw from its own shape, for round parts (ROS-free; preprocessing
``part_orientation``).

part_finder.oriented_box turns the box along the principal axes of the part's footprint. For a
round part (a flange, a gear, a bearing ring) those axes are noise: the box, and with it the
height map, the part-colour view and the voxel grid, turn by a random angle from frame to
frame, and a model has to learn every turn of the part. Such parts show a k-fold pattern
instead (six bolt holes, teeth, spokes): the k-th angular harmonic of the part's height map
about its centre has a phase that turns with the part, and a box whose x axis follows that
phase sees the part the same way up in every frame (modulo 360/k degrees: the pattern's own
symmetry). A rectangular part's strongest harmonic is k = 2 (its long side), the principal
axes' answer.

Which k a part has is chosen once, from the training parts (choose_harmonic: the largest
median strength over k = 1..MAX_HARMONIC, none when no harmonic reaches MIN_STRENGTH), and
stored in the checkpoint's preprocessing, so training and the live nodes turn the box alike.
benchmarks/part_crop_placement.py measures what it does to the map models.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import Iterable, Sequence, Tuple

import numpy as np

from .part_finder import PartObservation, oriented_box
from .plane import plane_basis

MAX_HARMONIC = 12
# A harmonic's strength: |sum of w exp(i k phi)| / sum |w| over the map (w: height about the
# top face, table and holes included), 0..1. On the synthetic flange the six bolt holes give
# 0.21-0.23 for k = 6 and 0.19-0.22 for k = 12 (the same pattern's second harmonic); every
# other k stays under 0.07 (random placement: the stereo shadow left of the part adds a
# little k = 1).
MIN_STRENGTH = 0.10
# A divisor of the strongest k with at least this share of its strength is the same pattern
# seen at its fundamental: 12 would leave the flange's box a bolt hole or half a pitch off.
FUNDAMENTAL_SHARE = 0.5
# The height map the harmonics are taken from: cells across the part's larger box side, at
# most GRID, and no finer than the part's pixels (an empty cell would read as a hole).
GRID = 96
CELLS_PER_PIXEL = 0.7


def _height_grid(part: PartObservation, grid: int) -> Tuple[np.ndarray, np.ndarray]:
    """(w, phi): the part's height about its top face per cell of a grid in plane_basis's
    axes centred on the box (0 outside the disc the part's box fits around), and each
    cell's angle."""
    basis = plane_basis(part.plane)
    planar = (part.points.astype(np.float64) - part.centroid) @ basis[:, :2]
    heights = part.points.astype(np.float64) @ part.plane[:3] + part.plane[3]
    extent = float(max(part.size[0], part.size[1]))
    index = np.clip(((planar / extent + 0.5) * grid).astype(np.int64), 0, grid - 1)
    cells = index[:, 1] * grid + index[:, 0]
    count = np.bincount(cells, minlength=grid * grid)
    occupied = count > 0
    mean = np.zeros(grid * grid)
    mean[occupied] = np.bincount(cells, heights, minlength=grid * grid)[occupied] / count[occupied]
    inside, phi = _disc_and_angles(grid)
    level = np.median(mean[inside & occupied]) if (inside & occupied).any() else 0.0
    return np.where(inside, mean - level, 0.0), phi


@lru_cache(maxsize=None)
def _disc_and_angles(grid: int) -> Tuple[np.ndarray, np.ndarray]:
    """The cells inside the disc the box's larger side holds (its corners would add the box's
    own 4-fold shape) and every cell's angle: the same for every frame of a grid size."""
    centres = (np.arange(grid) + 0.5) / grid - 0.5
    x, y = np.meshgrid(centres, centres)
    return (np.hypot(x, y) < 0.475).ravel(), np.arctan2(y, x).ravel()


def harmonic_grid(part: PartObservation) -> int:
    """Cells across the part for its harmonics: GRID, or fewer for a part seen with few
    pixels (its footprint spans about sqrt(4 N / pi) pixels for N points)."""
    pixels_across = np.sqrt(4.0 * len(part.points) / np.pi)
    return int(np.clip(CELLS_PER_PIXEL * pixels_across, 16, GRID))


def angular_harmonics(part: PartObservation, ks: Iterable[int]) -> np.ndarray:
    """The normalised complex angular harmonics k of an INSPECTED part's height map (see the
    module docstring); abs() is the strength, angle() / k the yaw of the pattern's peaks
    (plane_basis's axes)."""
    if not part.inspected:
        raise ValueError(f"no part to orient: {part.status.name} ({part.detail})")
    w, phi = _height_grid(part, harmonic_grid(part))
    total = float(np.abs(w).sum()) or 1.0
    return np.array([np.sum(w * np.exp(1j * k * phi)) / total for k in ks])


def choose_harmonic(parts: Sequence[PartObservation]) -> Tuple[int, float]:
    """(k, median strength) of the strongest harmonic over normal ``parts``, or of its
    smallest divisor that is nearly as strong (FUNDAMENTAL_SHARE); k = 0 (the principal axes)
    when none reaches MIN_STRENGTH."""
    ks = np.arange(1, MAX_HARMONIC + 1)
    strengths = np.median(np.abs([angular_harmonics(p, ks) for p in parts]), axis=0)
    best = int(ks[np.argmax(strengths)])
    if strengths[best - 1] < MIN_STRENGTH:
        return 0, float(strengths[best - 1])
    floor = max(MIN_STRENGTH, FUNDAMENTAL_SHARE * strengths[best - 1])
    k = next(d for d in range(1, best + 1) if best % d == 0 and strengths[d - 1] >= floor)
    return k, float(strengths[k - 1])


def harmonic_yaw(part: PartObservation, k: int) -> float:
    """The yaw (radians, in plane_basis's axes) of the k-fold pattern's first peak."""
    return float(np.angle(angular_harmonics(part, [k])[0]) / k)


def oriented_by_harmonic(part: PartObservation, k: int) -> PartObservation:
    """``part`` with its box turned to the k-fold pattern (k = 0 or a part not inspected:
    unchanged); centre and size are recomputed along the new axes."""
    if not k or not part.inspected:
        return part
    points = part.points.astype(np.float64)
    heights = points @ part.plane[:3] + part.plane[3]
    centre, rotation, size = oriented_box(points, heights, part.plane, harmonic_yaw(part, k))
    return replace(part, centroid=centre, rotation=rotation, size=size)


def polar_or_square(k: int) -> str:
    """The map projection for a part with a k-fold pattern: polar cells (polar_view.py) for a
    turned part (k >= 3: bolt circles, teeth, spokes), the square grid otherwise."""
    return "polar" if k >= 3 else "cartesian"
