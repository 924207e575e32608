"""Pinhole camera geometry for RGB-D frames (ROS-free).

Conventions: the camera frame is the ROS optical frame (x right, y down, z forward), units are
metres unless a name says otherwise, pixel (u, v) = (column, row) and pixel centres sit at
integer coordinates, as in ``sensor_msgs/CameraInfo`` and librealsense.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Mapping

import numpy as np

__all__ = [
    "CameraIntrinsics",
    "D435_COLOR_640X480",
    "intrinsics_for_image",
    "depth_to_points",
    "pixel_rays",
    "rotation_to_quaternion",
    "quaternion_to_rotation",
]


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of an undistorted image: size in pixels, focal lengths and principal
    point in pixels. Hashable, so it can key caches."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self) -> None:
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        if not (self.fx > 0 and self.fy > 0):
            raise ValueError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")
        # Normalise types so that equal cameras compare and hash equal.
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        for name in ("fx", "fy", "cx", "cy"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def K(self) -> np.ndarray:
        """The 3x3 camera matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (float64)."""
        return np.array(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64
        )

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape as numpy orders it: (height, width)."""
        return (self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable) with the six fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CameraIntrinsics":
        """Inverse of :meth:`to_dict`; extra keys (e.g. a ``model`` tag) are ignored."""
        return cls(
            width=int(d["width"]),
            height=int(d["height"]),
            fx=float(d["fx"]),
            fy=float(d["fy"]),
            cx=float(d["cx"]),
            cy=float(d["cy"]),
        )

    def scaled(self, width: int, height: int) -> "CameraIntrinsics":
        """Intrinsics of the same camera after resizing the whole image to ``width`` x ``height``
        (no crop). Uses the pixel-centre convention: c' = (c + 0.5) * s - 0.5."""
        sx = width / self.width
        sy = height / self.height
        return CameraIntrinsics(
            width=width,
            height=height,
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5,
            cy=(self.cy + 0.5) * sy - 0.5,
        )

    def cropped(self, x0: int, y0: int, width: int, height: int) -> "CameraIntrinsics":
        """Intrinsics of the sub-image whose top-left pixel is (x0, y0) in this image."""
        return CameraIntrinsics(
            width=width, height=height, fx=self.fx, fy=self.fy, cx=self.cx - x0, cy=self.cy - y0
        )


#: Intel RealSense D435 colour stream at 640x480 (typical factory calibration of one unit;
#: each unit differs by a few pixels, so read the real ones from the camera_info topic).
D435_COLOR_640X480 = CameraIntrinsics(
    width=640, height=480, fx=615.3, fy=615.7, cx=323.9, cy=238.1
)


def d435_color_intrinsics(width: int = 640, height: int = 480) -> CameraIntrinsics:
    """D435-like colour intrinsics at another stream size: the 16:9 modes (848x480, 1280x720)
    widen the view at the same focal length per row of pixels, so fx, fy follow the height
    and the principal point stays at the same place relative to the image centre."""
    if (width, height) == (640, 480):
        return D435_COLOR_640X480
    base = D435_COLOR_640X480
    scale = height / base.height
    return CameraIntrinsics(width=int(width), height=int(height), fx=base.fx * scale,
                            fy=base.fy * scale, cx=(width - 1) / 2.0 + (base.cx - 319.5) * scale,
                            cy=(height - 1) / 2.0 + (base.cy - 239.5) * scale)


def intrinsics_for_image(width: int, height: int) -> CameraIntrinsics:
    """Plausible pinhole intrinsics for an image that comes with NO calibration.

    This is a guess, not a calibration: fx = fy = 0.85 * width (a horizontal field of view of
    about 61 degrees, close to a RealSense colour camera) and the principal point at the image
    centre ((width - 1) / 2, (height - 1) / 2). Good enough to back-project depth for display or
    for a rough point cloud; use the camera's own intrinsics for anything metric.
    """
    f = 0.85 * float(width)
    return CameraIntrinsics(
        width=int(width),
        height=int(height),
        fx=f,
        fy=f,
        cx=(width - 1) / 2.0,
        cy=(height - 1) / 2.0,
    )


def depth_to_points(
    depth_m: np.ndarray,
    intrinsics: CameraIntrinsics,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Back-project a depth image into camera-frame 3-D points.

    ``depth_m`` is an HxW array of metric depth along the optical axis (z, in metres; convert a
    RealSense uint16 image with ``depth_mm * 0.001``). Pixels with zero, negative or non-finite
    depth are skipped, as are pixels where ``mask`` (HxW, truthy = keep) is false. Returns an
    (N, 3) float32 array of (x, y, z) in row-major pixel order.
    """
    depth = np.asarray(depth_m)
    if depth.ndim != 2:
        raise ValueError(f"depth must be HxW, got shape {depth.shape}")
    if depth.shape != intrinsics.shape:
        raise ValueError(
            f"depth shape {depth.shape} does not match intrinsics {intrinsics.shape} (HxW)"
        )
    z = depth.astype(np.float64, copy=False)
    valid = np.isfinite(z) & (z > 0)
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != depth.shape:
            raise ValueError(f"mask shape {m.shape} does not match depth shape {depth.shape}")
        valid &= m.astype(bool)
    v, u = np.nonzero(valid)
    zv = z[v, u]
    x = (u - intrinsics.cx) * zv / intrinsics.fx
    y = (v - intrinsics.cy) * zv / intrinsics.fy
    return np.stack([x, y, zv], axis=1).astype(np.float32)


@lru_cache(maxsize=8)
def pixel_rays(intrinsics: CameraIntrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Per column (u - cx) / fx and per row (v - cy) / fy (float32, read-only): a pixel's
    camera-frame point is depth * (ray_u[u], ray_v[v], 1). Cached per camera, so a node
    back-projects every frame without allocating the rays again."""
    ray_u = ((np.arange(intrinsics.width) - intrinsics.cx) / intrinsics.fx).astype(np.float32)
    ray_v = ((np.arange(intrinsics.height) - intrinsics.cy) / intrinsics.fy).astype(np.float32)
    ray_u.flags.writeable = False
    ray_v.flags.writeable = False
    return ray_u, ray_v


def rotation_to_quaternion(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """3 x 3 rotation matrix -> unit quaternion (x, y, z, w), ROS order, w >= 0."""
    m = np.asarray(rotation, np.float64)
    # Shepperd's method: start from the largest of w, x, y, z for numerical stability.
    trace = np.trace(m)
    candidates = [trace, m[0, 0], m[1, 1], m[2, 2]]
    k = int(np.argmax(candidates))
    if k == 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    elif k == 1:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif k == 2:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
    q = np.array(q)
    q /= np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    return tuple(float(v) for v in q)


def quaternion_to_rotation(x: float, y: float, z: float, w: float) -> np.ndarray:
    """Unit quaternion (ROS order x, y, z, w) -> 3 x 3 rotation matrix."""
    q = np.array([x, y, z, w], np.float64)
    norm = np.linalg.norm(q)
    if not norm > 0:
        return np.eye(3)
    x, y, z, w = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
