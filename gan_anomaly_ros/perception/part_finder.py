"""Finding the part in an RGB-D frame: valid depth in the workspace, the supporting plane, the
largest region above it, and the part's pose, box and image footprint (ROS-free, numpy/scipy).

Every frame ends in one of three statuses, the same values as ``AnomalyScore.status``:
INSPECTED (a part was found and is fit to be scored), NO_PART (the workspace holds nothing
above the plane) and INVALID_INPUT (the frame cannot tell: too little valid depth, no plane,
a part cut by the image border, holes in the part's depth). Only INSPECTED frames are scored,
so a part that was not really seen is never reported as good.

Why image-space clustering: the depth image is an organised cloud, so 8-connected pixels above
the plane are neighbours in space up to the depth jumps; labelling them costs ~2 ms per
640x480 frame, where DBSCAN on the same cloud costs hundreds (benchmarks/perception_speed.py
prints both). Points are never unorganised before the part is found.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np
from scipy import ndimage

from .geometry import CameraIntrinsics, pixel_rays
from .plane import fit_plane_ransac, plane_basis, plane_inliers, plane_through

Box = Tuple[int, int, int, int]   # x, y, width, height in image pixels


class Status(enum.IntEnum):
    """What became of a frame; the values are AnomalyScore's status constants. 0 is never
    published: a zero-initialised message is not a verdict."""

    INSPECTED = 1
    NO_PART = 2
    INVALID_INPUT = 3
    SKIPPED = 4          # set by the nodes, not by perception: a frame dropped while busy


@dataclass(frozen=True)
class PartFinderConfig:
    """How a part is told from its surroundings; the defaults fit a camera 0.3-1.5 m above a
    table (RealSense D4xx)."""

    min_depth_m: float = 0.1              # closer or farther depth is sensor garbage
    max_depth_m: float = 2.0
    # Workspace box in the camera frame (metres); points outside are ignored.
    workspace_min: Tuple[float, float, float] = (-np.inf, -np.inf, -np.inf)
    workspace_max: Tuple[float, float, float] = (np.inf, np.inf, np.inf)
    plane_distance_m: float = 0.004       # RANSAC inlier band: depth noise at ~0.6 m
    plane_iterations: int = 100
    plane_sample_points: int = 4000       # the plane is fit on a random subset: speed
    min_plane_fraction: float = 0.2       # of the valid workspace points, or no plane
    min_height_m: float = 0.005           # above the plane: part, not table noise
    max_height_m: float = 0.5
    min_part_area: float = 0.002          # of the image, smaller regions are noise or debris
    min_valid_fraction: float = 0.7       # of the part's footprint with valid depth
    min_frame_valid_fraction: float = 0.1  # of the image with valid depth in the workspace
    reject_border_parts: bool = True      # a part cut by the image border was not all seen
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.min_depth_m < self.max_depth_m:
            raise ValueError(f"need 0 < min_depth_m < max_depth_m, got {self.min_depth_m}, "
                             f"{self.max_depth_m}")
        if not all(lo < hi for lo, hi in zip(self.workspace_min, self.workspace_max)):
            raise ValueError(f"workspace_min {self.workspace_min} must be below workspace_max "
                             f"{self.workspace_max} on every axis")
        if not 0 <= self.min_height_m < self.max_height_m:
            raise ValueError("need 0 <= min_height_m < max_height_m")
        for name in ("min_plane_fraction", "min_part_area", "min_valid_fraction",
                     "min_frame_valid_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


@dataclass
class PartObservation:
    """What the finder saw. Pose fields are set only when status is INSPECTED (and the plane
    also on NO_PART); ``detail`` says why a frame was not inspected."""

    status: Status
    detail: str = ""
    plane: Optional[np.ndarray] = None          # (a, b, c, d), see plane.py
    plane_support: float = 0.0                  # share of valid workspace points on the plane
    mask: Optional[np.ndarray] = None           # H x W bool, the part's pixels
    footprint: Optional[Box] = None             # bounding box of the mask
    centroid: Optional[np.ndarray] = None       # box centre, camera frame, metres
    rotation: Optional[np.ndarray] = None       # 3 x 3, columns = box axes (z = plane normal)
    size: Optional[np.ndarray] = None           # box sides along those axes, metres
    valid_fraction: float = 0.0                 # of the footprint with valid depth
    points: Optional[np.ndarray] = field(default=None, repr=False)   # N x 3, the part's points
    pixels: Optional[Tuple[np.ndarray, np.ndarray]] = field(default=None, repr=False)  # rows, cols

    @property
    def inspected(self) -> bool:
        return self.status is Status.INSPECTED


def part_frame_points(part: PartObservation, points: Optional[np.ndarray] = None) -> np.ndarray:
    """The part's points (or other camera-frame ``points``, N x 3 metres) in its box frame:
    origin at the box centre, axes the box's (z up from the plane). Voxel grids and height
    maps are made in this frame."""
    points = part.points if points is None else points
    return (np.asarray(points, np.float64) - part.centroid) @ part.rotation


def valid_depth(depth_m: np.ndarray, config: PartFinderConfig, out: Optional[np.ndarray] = None,
                spare: Optional[np.ndarray] = None) -> np.ndarray:
    """Pixels whose depth is a measurement: finite and within the sensor's range (0, NaN,
    infinity and negative values are the drivers' ways of saying "no data"). ``out`` and
    ``spare``: boolean arrays of the image's shape to work in (FrameScratch)."""
    with np.errstate(invalid="ignore"):
        out = np.isfinite(depth_m, out=out)
        spare = np.greater_equal(depth_m, config.min_depth_m, out=spare)
        out &= spare
        out &= np.less_equal(depth_m, config.max_depth_m, out=spare)
    return out


def in_workspace(valid: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray,
                 config: PartFinderConfig, spare: Optional[np.ndarray] = None) -> np.ndarray:
    for values, lo, hi in zip((x, y, z), config.workspace_min, config.workspace_max):
        if np.isfinite(lo):
            valid &= np.greater_equal(values, lo, out=spare)
        if np.isfinite(hi):
            valid &= np.less_equal(values, hi, out=spare)
    return valid


class FrameScratch:
    """The full-frame arrays find_part works in, kept from frame to frame of one camera's
    stream instead of allocated anew for every frame (the preprocess node holds one):
    depth with invalid pixels zeroed, x, y, the heights above the plane, and three masks.
    Nothing find_part returns is a view of them."""

    def __init__(self, shape: Tuple[int, int]):
        self.shape = tuple(int(n) for n in shape)
        self.z, self.x, self.y, self.heights = (np.empty(self.shape, np.float32)
                                                for _ in range(4))
        self.valid, self.above, self.spare = (np.empty(self.shape, bool) for _ in range(3))

    @classmethod
    def for_shape(cls, scratch: Optional["FrameScratch"], shape) -> "FrameScratch":
        """``scratch`` when it fits images of this shape, else a new one."""
        if scratch is not None and scratch.shape == tuple(shape):
            return scratch
        return cls(shape)


def largest_region(mask: np.ndarray) -> Tuple[np.ndarray, int]:
    """The largest 8-connected region of a boolean image, and its pixel count."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count == 0:
        return np.zeros_like(mask), 0
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    best = int(np.argmax(sizes))
    return labels == best, int(sizes[best])


def mask_box(mask: np.ndarray) -> Box:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return (int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))


def footprint_valid_fraction(mask: np.ndarray, valid: np.ndarray, box: Box) -> float:
    """Share of the part's outline (its mask with holes filled) that has valid depth: depth
    holes inside the part count against it, through-holes that show the table do not."""
    x, y, w, h = box
    filled = ndimage.binary_fill_holes(mask[y:y + h, x:x + w])
    return float(valid[y:y + h, x:x + w][filled].mean())


def oriented_box(points: np.ndarray, heights: np.ndarray, plane: np.ndarray,
                 yaw: Optional[float] = None):
    """Box of the part standing on the plane: horizontal axes along the principal directions
    of its points (or, given ``yaw``, at that angle in radians from plane_basis's first axis
    towards its second: part_orientation.py), from the plane up to its top (robust
    percentiles, so a few flying pixels do not grow it). Returns (centre, rotation, size); the
    centre is the pick-relevant centroid (the middle of the part's volume, which the camera
    sees only from above)."""
    basis = plane_basis(plane)
    planar = points @ basis[:, :2]                     # in-plane coordinates
    if yaw is None:
        centred = planar - planar.mean(axis=0)
        _, vectors = np.linalg.eigh(centred.T @ centred)
        major = vectors[:, 1]                          # largest eigenvalue last
    else:
        major = np.array([np.cos(yaw), np.sin(yaw)])
    axes2d = np.stack([major, [-major[1], major[0]]], axis=1)
    along = planar @ axes2d
    lo, hi = np.percentile(along, [0.5, 99.5], axis=0)
    top = float(np.percentile(heights, 99.5))
    x_axis = basis[:, :2] @ axes2d[:, 0]
    y_axis = basis[:, :2] @ axes2d[:, 1]
    normal = basis[:, 2]
    rotation = np.stack([x_axis, y_axis, normal], axis=1)
    middle = (lo + hi) / 2.0
    # p = u1 e1 + u2 e2 + (height - d) n for in-plane coordinates u and height above the plane.
    centre = (basis[:, :2] @ (axes2d @ middle)) + (top / 2.0 - plane[3]) * normal
    return centre, rotation, np.array([hi[0] - lo[0], hi[1] - lo[1], top])


@dataclass(frozen=True)
class PlaneHint:
    """The plane an earlier frame found, offered to the next one: a fixed camera over a table
    sees the same plane in every frame, and checking it costs a fraction of RANSAC (which was
    a third of the whole perception step)."""

    plane: np.ndarray
    support: float

    @classmethod
    def from_observation(cls, part: Optional["PartObservation"]) -> Optional["PlaneHint"]:
        if part is None or part.plane is None or part.plane_support <= 0:
            return None
        return cls(part.plane, part.plane_support)


def find_part(depth_m: np.ndarray, intrinsics: CameraIntrinsics,
              config: PartFinderConfig = PartFinderConfig(),
              plane_hint: Optional[PlaneHint] = None,
              scratch: Optional[FrameScratch] = None) -> PartObservation:
    """Find the part in a depth image (metres, H x W, any invalid marker) seen with these
    intrinsics. Never raises on bad depth values: they end in INVALID_INPUT with a reason.

    ``plane_hint``: the previous frame's plane. It is kept (refined by least squares on its
    inliers) when at least HINT_SUPPORT of the support it had still lies on it; otherwise the
    plane is found afresh, as without a hint.

    ``scratch``: a FrameScratch to work in (FrameScratch.for_shape keeps one per stream);
    without it find_part allocates its own."""
    depth = np.asarray(depth_m)
    if depth.shape != intrinsics.shape:
        return PartObservation(Status.INVALID_INPUT, f"depth is {depth.shape[::-1]} pixels, "
                               f"camera_info {intrinsics.width}x{intrinsics.height}")
    s = FrameScratch.for_shape(scratch, depth.shape)
    z, x, y, spare = s.z, s.x, s.y, s.spare
    ray_u, ray_v = pixel_rays(intrinsics)
    valid = valid_depth(depth, config, out=s.valid, spare=spare)
    z.fill(0)                                          # float32 metres, no NaN/inf from here
    np.copyto(z, depth, casting="unsafe", where=valid)
    np.multiply(z, ray_u[None, :], out=x)
    np.multiply(z, ray_v[:, None], out=y)
    valid = in_workspace(valid, x, y, z, config, spare)
    valid_share = float(valid.mean())
    if valid_share < config.min_frame_valid_fraction:
        return PartObservation(Status.INVALID_INPUT, f"only {100 * valid_share:.1f} % of the "
                               "pixels have valid depth in the workspace")

    sample = _plane_sample(x, y, z, valid, config)
    found = _confirm_plane(sample, plane_hint, config) if plane_hint is not None else None
    plane, support = found or _fit_plane(sample, config)
    if plane is None:
        return PartObservation(Status.INVALID_INPUT, "no supporting plane: fewer than "
                               f"{100 * config.min_plane_fraction:.0f} % of the valid points lie "
                               "on one plane")
    heights = plane_heights(plane, ray_u, ray_v, z, out=s.heights)
    above = np.greater(heights, config.min_height_m, out=s.above)
    above &= np.less(heights, config.max_height_m, out=spare)
    above &= valid
    mask, area = largest_region(above)
    if area < config.min_part_area * z.size:
        return PartObservation(Status.NO_PART, "nothing above the plane in the workspace",
                               plane=plane, plane_support=support)
    box = mask_box(mask)
    if config.reject_border_parts and _touches_border(box, intrinsics):
        return PartObservation(Status.INVALID_INPUT, "the part is cut by the image border",
                               plane=plane, mask=mask, footprint=box)
    bx, by, bw, bh = box   # valid depth of the raw frame, counted on the footprint only
    valid_fraction = footprint_valid_fraction(
        mask[by:by + bh, bx:bx + bw], valid_depth(depth[by:by + bh, bx:bx + bw], config),
        (0, 0, bw, bh))
    if valid_fraction < config.min_valid_fraction:
        return PartObservation(Status.INVALID_INPUT, f"only {100 * valid_fraction:.0f} % of the "
                               "part has valid depth", plane=plane, mask=mask, footprint=box,
                               valid_fraction=valid_fraction)
    rows, cols = np.nonzero(mask)
    points = np.stack([x[rows, cols], y[rows, cols], z[rows, cols]], axis=1)
    centre, rotation, size = oriented_box(points.astype(np.float64), heights[rows, cols], plane)
    return PartObservation(Status.INSPECTED, plane=plane, plane_support=support, mask=mask,
                           footprint=box, centroid=centre, rotation=rotation, size=size,
                           valid_fraction=valid_fraction, points=points, pixels=(rows, cols))


def plane_heights(plane, ray_u: np.ndarray, ray_v: np.ndarray, z: np.ndarray,
                  out: Optional[np.ndarray] = None) -> np.ndarray:
    """Height of every pixel's point above the plane: a x + b y + c z + d with x = z ray_u,
    y = z ray_v, i.e. (a ray_u + b ray_v + c) z + d, without x and y."""
    out = np.add((plane[1] * ray_v)[:, None], (plane[0] * ray_u)[None, :], out=out)
    out += np.float32(plane[2])
    out *= z
    out += np.float32(plane[3])
    return out


def _plane_sample(x, y, z, valid, config: PartFinderConfig) -> np.ndarray:
    """Up to plane_sample_points valid points, drawn with replacement (repeats do not matter
    to a plane fit, and drawing without replacement permuted every valid pixel: 1.4 ms)."""
    index = np.flatnonzero(valid)
    if len(index) > config.plane_sample_points:
        rng = np.random.default_rng(config.seed)
        index = index[rng.integers(0, len(index), config.plane_sample_points)]
    return np.stack([x.ravel()[index], y.ravel()[index], z.ravel()[index]], axis=1)


def _fit_plane(sample: np.ndarray, config: PartFinderConfig):
    """RANSAC on the sample -> (plane, support) or (None, 0) without an acceptable plane."""
    if len(sample) < 3:
        return None, 0.0
    try:
        plane, inliers = fit_plane_ransac(sample, config.plane_distance_m,
                                          config.plane_iterations, config.seed)
    except (ValueError, np.linalg.LinAlgError):
        return None, 0.0
    support = float(inliers.mean())
    return (plane, support) if support >= config.min_plane_fraction else (None, 0.0)


# A hinted plane is kept while this share of its support still lies on it: a part moving
# over the table changes the support by a few per cent, a moved camera or a new scene by most.
HINT_SUPPORT = 0.8


def _confirm_plane(sample: np.ndarray, hint: PlaneHint, config: PartFinderConfig):
    """(plane, support) when the hinted plane still holds in this frame, else None."""
    if len(sample) < 3:
        return None
    inliers = plane_inliers(sample, hint.plane, config.plane_distance_m)
    support = float(inliers.mean())
    if support < max(config.min_plane_fraction, HINT_SUPPORT * hint.support) or \
            inliers.sum() < 3:
        return None
    try:
        plane = plane_through(sample[inliers])
    except np.linalg.LinAlgError:
        return None
    return plane, float(plane_inliers(sample, plane, config.plane_distance_m).mean())


def _touches_border(box: Box, intrinsics: CameraIntrinsics) -> bool:
    x, y, w, h = box
    return x == 0 or y == 0 or x + w == intrinsics.width or y + h == intrinsics.height
