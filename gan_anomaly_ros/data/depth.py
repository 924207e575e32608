"""Depth images as users have them, turned into metres (0 = invalid).

Datasets and tools store depth in several ways: 16-bit PNG in millimetres (the RealSense and
ROS convention), 32-bit float TIFF in metres, or 8-bit PNG normalised or scaled by whatever
tool wrote it (0 = background). The first two say their unit by their pixel type; an 8-bit
image does not, so it is refused unless the user says what a level means.

``DepthFormat``:
- ``auto`` (default): 16-bit integer -> millimetres, 32/64-bit float -> metres, 8-bit -> refused
  with a message saying what to pass.
- ``millimetres`` / ``metres``: every depth image holds that unit (integer or float pixels).
- ``scaled``: metres = stored value * ``scale`` (``--depth-scale``; e.g. an 8-bit image that a
  tool normalised from 0.4 to 0.6 m holds (0.2 / 255) m per level, plus an offset the
  relative-depth input does not need: only differences reach the model).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

DEPTH_FORMATS = ("auto", "millimetres", "metres", "scaled")


class DepthFormatError(ValueError):
    """A depth image's unit cannot be known or does not fit the format given."""


@dataclass(frozen=True)
class DepthFormat:
    format: str = "auto"
    scale: Optional[float] = None   # metres per stored unit, for "scaled"

    def __post_init__(self):
        fmt = self.format
        if self.scale is not None and fmt == "auto":
            fmt = "scaled"  # --depth-scale alone says it all
            object.__setattr__(self, "format", fmt)
        if fmt not in DEPTH_FORMATS:
            raise DepthFormatError(f"depth format must be one of {DEPTH_FORMATS}, got {fmt!r}")
        if fmt == "scaled" and not (self.scale and float(self.scale) > 0):
            raise DepthFormatError("depth format 'scaled' needs --depth-scale METRES_PER_UNIT > 0")
        if fmt != "scaled" and self.scale is not None:
            raise DepthFormatError(f"--depth-scale goes with --depth-format scaled, not {fmt!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def to_metres(self, stored: np.ndarray, path) -> np.ndarray:
        """A single-channel depth image as float32 metres, 0 where invalid."""
        if stored.ndim != 2:
            raise DepthFormatError(f"depth image {path} must have one channel, has shape "
                                   f"{stored.shape} (a colourised depth image is not depth)")
        factor = self.metres_per_unit(stored.dtype, path)
        metres = stored.astype(np.float32) * np.float32(factor)
        metres[~np.isfinite(metres) | (metres < 0)] = 0.0
        return metres

    def metres_per_unit(self, dtype: np.dtype, path) -> float:
        if self.format == "scaled":
            return float(self.scale)
        if self.format == "metres":
            return 1.0
        if self.format == "millimetres":
            return 0.001
        kind = np.dtype(dtype)
        if kind == np.uint8:
            raise DepthFormatError(
                f"{path} is an 8-bit depth image: its unit cannot be known (it was normalised "
                "or scaled by the tool that wrote it). Pass --depth-scale METRES_PER_LEVEL "
                "(e.g. 0.001 if a level is a millimetre) or --depth-format millimetres|metres "
                "(replay camera: parameters depth_scale / depth_format)")
        if kind.kind in "ui":
            return 0.001   # 16/32-bit integers: millimetres, the RealSense convention
        if kind.kind == "f":
            return 1.0     # float depth is metres (ROS 32FC1, float TIFF)
        raise DepthFormatError(f"{path}: depth pixels of type {kind} are not supported")


def read_depth_image(path: Path) -> np.ndarray:
    """The stored pixels of a depth image, in their own type (no unit applied)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            stored = np.asarray(image)
    except Exception as exc:  # PIL raises many types for broken files
        raise DepthFormatError(f"cannot read depth image {path}: {exc}") from exc
    if stored.dtype == np.int32 and stored.size and stored.max() <= 65535 and stored.min() >= 0:
        stored = stored.astype(np.uint16)  # PIL opens some 16-bit PNGs as 32-bit mode "I"
    return stored
