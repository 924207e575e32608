"""Turning a camera frame into a model input: the one code path shared by training and live scoring.

A frame is an RGB image (HxWx3 uint8) and, optionally, an aligned depth image in metres
(HxW float32, 0 = invalid). The model input is a float32 CxSxS array in [-1, 1]:

- ``rgb``:  3 channels, colour.
- ``gray``: 1 channel, luminance (ITU-R BT.601).
- ``rgbd``: 4 channels, colour + depth relative to the median depth of the crop.
- ``height``: 1 channel, the part's orthographic height map relative to its top face
  (perception/part_heights.py): geometry only, for defects colour does not show.
- ``part_colour``: 3 channels, the part's orthographic colour view in the same cells,
  standardised per part (perception/part_colour.py): colour without the perspective.
- ``voxel``: 1 x S x S x S, the part's voxel grid (perception/voxels.py), for the 3D models.

The last three are made in the part's box frame, turned to the part's own k-fold pattern when
training found one (``part_orientation``, perception/part_orientation.py); the two maps can be
binned in polar cells (``map_projection``, perception/polar_view.py).

Depth is made relative because absolute distance changes with the table height and the
mounting of the camera, while the defects we look for are millimetre-scale relief. The range
mapped to [-1, 1] is chosen from the training data (relative_depth_range) and stored in the
checkpoint.

It is made in two steps: ``resize_crop`` (crop and resize: colour 0..255, depth in metres)
and ``normalize_input`` (everything below), so that an exported model can carry the second
step inside its graph (gan_anomaly_ros.export) and the live scorer can be fed the raw crop.

Photometric normalisation (``normalize="standardize"``): the colour channels of each image
are shifted and scaled to mean 0 and 1/3 standard deviation (clipped to [-1, 1], so +-3 sigma
spans the range), which removes the lighting that changes from image to image (exposure,
lamp ageing) before any model sees it. Depth is left alone: light does not move the part.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Optional, Tuple

import numpy as np
from PIL import Image

from .part_orientation import MAX_HARMONIC
from .polar_view import PROJECTIONS
from .voxels import KINDS as VOXEL_KINDS

# "voxel": 1 channel, a size^3 grid of the part (perception/voxels.py), for the 3D models.
MODES = {"rgb": 3, "gray": 1, "rgbd": 4, "height": 1, "part_colour": 3, "voxel": 1}
# Inputs made from the part that perception finds (not cut from the image): model-ready as
# they come out of perception, and there is no input without a part.
PART_MODES = ("height", "part_colour", "voxel")
# Of those, the 2D maps in the part's box frame (part_heights.part_cells): masks are binned
# into their cells, and their anomaly maps go back onto the image through the part's points.
MAP_MODES = ("height", "part_colour")
NORMALIZATIONS = ("none", "standardize")
CROP_MODES = ("part", "fixed")
# Standardised colour is divided by this many standard deviations to fit in [-1, 1].
STANDARDIZE_SIGMAS = 3.0

# (x, y, width, height) in pixels of the source image.
Box = Tuple[int, int, int, int]


class PreprocessError(ValueError):
    """A frame cannot be turned into a model input (wrong shape, empty image, ...)."""


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything that decides what the model sees; stored in every checkpoint."""

    mode: str = "rgb"
    size: int = 64
    # Centre square crop whose side is this fraction of the shorter image side;
    # 0 means no crop (the whole image is resized, aspect ratio not kept).
    center_crop: float = 0.0
    # Explicit crop (x, y, width, height) in source pixels; wins over center_crop.
    crop_box: Optional[Box] = None
    # "part": a square around the part that perception finds (part_finder.py), grown by
    # part_margin of its side on every side, so the part is centred wherever it lies; needs
    # depth and intrinsics (`gan-anomaly train` picks it for RGB-D data). "fixed":
    # center_crop / crop_box. Checkpoints from before this field existed load as "fixed".
    crop_mode: str = "fixed"
    part_margin: float = 0.15
    # Relative depth range mapped to [-1, 1], in metres around the crop's median depth: must
    # exceed the part's height over the table, or its top face saturates and relief is lost.
    # None until training sets it from the data (relative_depth_range).
    depth_range_m: Optional[float] = 0.04
    # Per-image photometric normalisation of the colour channels (see the module docstring).
    normalize: str = "none"
    # Mode "voxel": the grid's kind (voxels.KINDS: "tsdf", "occupancy", "relative_height");
    # size = resolution.
    voxel_kind: str = "relative_height"
    # Mode "height" and voxel kind "relative_height": relative height (metres, about the
    # part's top face) mapped to [-1, 1].
    height_range_m: float = 0.008
    # The part's box (and so the maps and grids made in it) turned to its k-fold angular
    # pattern (part_orientation.py: bolt holes, teeth) instead of its principal axes (0, and
    # checkpoints from before this field existed). None until training chooses k from the
    # training parts (`gan-anomaly train --part-orientation auto`).
    part_orientation: Optional[int] = 0
    # Map modes: the part binned into a square grid in its box frame ("cartesian", and
    # checkpoints from before this field existed) or into radius x angle cells ("polar",
    # polar_view.py: for turned parts). None until training chooses (`--map-projection auto`:
    # polar for part colour of parts with a k-fold pattern, k >= 3, part_orientation.py).
    map_projection: Optional[str] = "cartesian"
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.mode not in MODES:
            raise PreprocessError(f"mode must be one of {sorted(MODES)}, got {self.mode!r}")
        if not 8 <= int(self.size) <= 1024:
            raise PreprocessError(f"size must be between 8 and 1024 pixels, got {self.size}")
        if not 0.0 <= float(self.center_crop) <= 1.0:
            raise PreprocessError(f"center_crop must be in [0, 1], got {self.center_crop}")
        if self.crop_box is not None:
            box = tuple(int(v) for v in self.crop_box)
            if len(box) != 4 or box[2] <= 0 or box[3] <= 0 or box[0] < 0 or box[1] < 0:
                raise PreprocessError(f"crop_box must be (x, y, width, height) > 0, got {self.crop_box}")
            object.__setattr__(self, "crop_box", box)
        if self.depth_range_m is not None and not self.depth_range_m > 0:
            raise PreprocessError(f"depth_range_m must be > 0, got {self.depth_range_m}")
        if self.crop_mode not in CROP_MODES:
            raise PreprocessError(f"crop_mode must be one of {CROP_MODES}, got {self.crop_mode!r}")
        if not 0.0 <= float(self.part_margin) <= 1.0:
            raise PreprocessError(f"part_margin must be in [0, 1], got {self.part_margin}")
        if self.normalize not in NORMALIZATIONS:
            raise PreprocessError(f"normalize must be one of {NORMALIZATIONS}, got "
                                  f"{self.normalize!r} (a checkpoint from a newer version?)")
        if self.voxel_kind not in VOXEL_KINDS:
            raise PreprocessError(f"voxel_kind must be one of {VOXEL_KINDS}, got "
                                  f"{self.voxel_kind!r}")
        if not float(self.height_range_m) > 0:
            raise PreprocessError(f"height_range_m must be > 0, got {self.height_range_m}")
        if self.map_projection is not None and self.map_projection not in PROJECTIONS:
            raise PreprocessError(f"map_projection must be one of {PROJECTIONS}, got "
                                  f"{self.map_projection!r}")
        if self.map_projection not in (None, "cartesian") and self.mode not in MAP_MODES:
            raise PreprocessError(f"map_projection {self.map_projection!r} is for the map "
                                  f"modes {MAP_MODES}, not mode {self.mode!r}")
        if self.part_orientation is not None and (
                isinstance(self.part_orientation, bool) or self.part_orientation != int(
                    self.part_orientation) or not 0 <= self.part_orientation <= MAX_HARMONIC):
            raise PreprocessError(f"part_orientation must be a whole number from 0 (the "
                                  f"principal axes) to {MAX_HARMONIC}, got "
                                  f"{self.part_orientation!r}")

    @property
    def channels(self) -> int:
        return MODES[self.mode]

    @property
    def colour_channels(self) -> int:
        """The channels that carry light (the rest, depth, is geometry)."""
        return 0 if self.mode in PART_MODES else 1 if self.mode == "gray" else 3

    @property
    def uses_depth(self) -> bool:
        return self.mode in ("rgbd",) + PART_MODES

    @property
    def finds_part(self) -> bool:
        """Every frame needs the part found in its depth (part crop, height map, voxels)."""
        return self.crop_mode == "part" or self.mode in PART_MODES

    @property
    def uses_height_range(self) -> bool:
        return self.mode == "height" or (self.mode == "voxel" and
                                         self.voxel_kind == "relative_height")

    @property
    def spatial_dims(self) -> int:
        """2 for images (C x S x S), 3 for voxel grids (1 x S x S x S)."""
        return 3 if self.mode == "voxel" else 2

    @property
    def input_shape(self) -> Tuple[int, ...]:
        """The shape of one model input."""
        return (self.channels,) + (int(self.size),) * self.spatial_dims

    def to_dict(self) -> dict:
        data = asdict(self)
        data["crop_box"] = list(self.crop_box) if self.crop_box else None
        # Each mode keeps only its own fields, so older checkpoints keep their fingerprints.
        if self.mode != "voxel":
            data.pop("voxel_kind")
        if not self.uses_height_range:
            data.pop("height_range_m")
        if self.part_orientation == 0:
            data.pop("part_orientation")
        if self.map_projection == "cartesian":
            data.pop("map_projection")
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "PreprocessConfig":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known.setdefault("crop_mode", "fixed")  # stored before part crops existed
        if known.get("crop_box") is not None:
            known["crop_box"] = tuple(known["crop_box"])
        return cls(**known)

    def fingerprint(self) -> str:
        """Short hash of the settings: the scorer refuses inputs made with other settings."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def crop_box_for(config: PreprocessConfig, width: int, height: int) -> Box:
    """The region of a width x height image that the model looks at."""
    if config.crop_box is not None:
        x, y, w, h = config.crop_box
        if x + w > width or y + h > height:
            raise PreprocessError(
                f"crop_box {config.crop_box} does not fit in a {width}x{height} image")
        return config.crop_box
    if config.center_crop > 0:
        side = max(1, int(round(min(width, height) * config.center_crop)))
        return ((width - side) // 2, (height - side) // 2, side, side)
    return (0, 0, width, height)


def crop_warning(config: PreprocessConfig, width: int, height: int) -> Optional[str]:
    """A warning when the crop of a width x height image is smaller than the model input:
    the model then sees an upscaled, blurred crop (e.g. --center-crop 0.4 of a 64 px image is
    26 px), usually not what was meant."""
    _, _, w, h = crop_box_for(config, width, height)
    if min(w, h) >= config.size:
        return None
    return (f"the crop of these {width}x{height} images is {w}x{h} px, smaller than the "
            f"model input ({config.size} px): the model sees an upscaled crop. Use a larger "
            "--center-crop / --crop-box (0 = the whole image) or a smaller --size.")


def _resize(array: np.ndarray, size: int, resample) -> np.ndarray:
    return np.asarray(Image.fromarray(array).resize((size, size), resample=resample))


def _check_frame(rgb: np.ndarray, depth_m: Optional[np.ndarray], config: PreprocessConfig):
    if rgb is None or rgb.size == 0:
        raise PreprocessError("empty colour image")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise PreprocessError(f"colour image must be HxWx3 uint8, got {rgb.shape} {rgb.dtype}")
    if config.uses_depth:
        if depth_m is None:
            raise PreprocessError(f"mode {config.mode!r} needs a depth image, none given")
        if depth_m.shape != rgb.shape[:2]:
            raise PreprocessError(
                f"depth {depth_m.shape} is not aligned with colour {rgb.shape[:2]}: "
                "use the aligned depth topic (align_depth.enable:=true)")


def normalize_depth(depth_m: np.ndarray, range_m: float) -> np.ndarray:
    """Depth relative to its median valid value, scaled to [-1, 1]; invalid pixels -> 0."""
    valid = np.isfinite(depth_m) & (depth_m > 0)
    if not valid.any():
        return np.zeros(depth_m.shape, np.float32)
    median = float(np.median(depth_m[valid]))
    # Closer than the median (raised relief) is positive, like a height map.
    relative = np.where(valid, (median - depth_m) / range_m, 0.0)
    return np.clip(relative, -1.0, 1.0).astype(np.float32)


def standardize(colour: np.ndarray) -> np.ndarray:
    """Colour channels (C x S x S) to mean 0 and 1/3 standard deviation, clipped to [-1, 1]."""
    spread = float(colour.std())
    if spread < 1e-6:  # a flat image: nothing to scale, and no division by zero
        return np.zeros_like(colour)
    return np.clip((colour - float(colour.mean())) / (STANDARDIZE_SIGMAS * spread), -1.0, 1.0)


# ITU-R BT.601 luminance weights (mode "gray").
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def resize_crop(rgb: np.ndarray, depth_m: Optional[np.ndarray], config: PreprocessConfig,
                crop: Optional[Box] = None) -> Tuple[np.ndarray, Box]:
    """Frame -> (C x S x S float32 raw crop, crop box in source pixels): the crop resized to
    the model size, before normalisation. Colour channels are 0..255 (gray: BT.601
    luminance), depth is metres with 0 for invalid pixels. ``crop``: the box to cut (a part
    crop from frame_input.prepare_frame); None: the fixed crop.

    Kept apart from normalize_input so that an exported model can do the normalisation in its
    own graph (gan_anomaly_ros.export) while the scorer feeds it this crop."""
    _check_frame(rgb, depth_m, config)
    height, width = rgb.shape[:2]
    if crop is None and config.crop_mode == "part":
        raise PreprocessError("crop_mode 'part' needs the part's crop box: call "
                              "perception.frame_input.prepare_frame, which finds the part")
    x, y, w, h = crop if crop is not None else crop_box_for(config, width, height)
    if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > width or y + h > height:
        raise PreprocessError(f"crop {(x, y, w, h)} does not fit in a {width}x{height} image")
    crop = np.ascontiguousarray(rgb[y:y + h, x:x + w])
    colour = _resize(crop, config.size, Image.BILINEAR).astype(np.float32)
    if config.mode == "gray":
        channels = [colour @ LUMA]
    else:
        channels = [colour[..., c] for c in range(3)]
    if config.uses_depth:
        depth_crop = np.ascontiguousarray(depth_m[y:y + h, x:x + w], dtype=np.float32)
        # Nearest keeps invalid (0) pixels from smearing into valid ones.
        depth_small = _resize(depth_crop, config.size, Image.NEAREST)
        # NaN / inf / negative become 0: one code for "invalid", and a finite raw crop.
        valid = np.isfinite(depth_small) & (depth_small > 0)
        channels.append(np.where(valid, depth_small, 0.0).astype(np.float32))
    return np.stack(channels).astype(np.float32, copy=False), (x, y, w, h)


def normalize_input(raw: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Raw crop (resize_crop, C x S x S) -> the model input in [-1, 1] (C x S x S float32).
    Height maps and voxel grids pass unchanged: perception makes them model-ready
    (part_heights.py, part_voxels.py).
    export/normalization.py is the same arithmetic in torch; keep the two in step."""
    raw = np.asarray(raw, np.float32)
    if config.mode in PART_MODES:
        return raw
    colour = raw[:config.colour_channels] / 127.5 - 1.0
    if config.normalize == "standardize":
        colour = standardize(colour)
    channels = list(colour)
    if config.uses_depth:
        if config.depth_range_m is None:
            raise PreprocessError("depth_range_m is not set: training chooses it from the data "
                                  "(relative_depth_range) before preprocessing")
        channels.append(normalize_depth(raw[config.colour_channels], config.depth_range_m))
    return np.stack(channels).astype(np.float32, copy=False)


def preprocess_frame(rgb: np.ndarray, depth_m: Optional[np.ndarray],
                     config: PreprocessConfig, crop: Optional[Box] = None
                     ) -> Tuple[np.ndarray, Box]:
    """Frame -> (CxSxS float32 model input in [-1, 1], crop box in source pixels). ``crop``:
    the box to cut (a part crop from frame_input.prepare_frame); None: the fixed crop."""
    raw, box = resize_crop(rgb, depth_m, config, crop)
    return normalize_input(raw, config), box


def relative_depth_range(depth_crops, size: int, percentile: float = 99.0,
                         margin: float = 1.25, floor_m: float = 0.002) -> float:
    """A relative-depth range that fits the parts' relief: ``margin`` x the ``percentile`` of
    |depth - crop median| over the valid pixels of these crops (metres, resized to the model's
    size as preprocessing does), at least ``floor_m``, rounded to 0.1 mm. Robust to the few
    pixels of sensor noise or stray objects that a maximum would follow."""
    values = []
    for crop in depth_crops:
        small = _resize(np.ascontiguousarray(crop, dtype=np.float32), size, Image.NEAREST)
        valid = np.isfinite(small) & (small > 0)
        if valid.sum() >= 2:
            values.append(np.abs(small[valid] - np.median(small[valid])))
    if not values:
        raise PreprocessError("no valid depth in the training images: cannot choose the "
                              "relative-depth range (is the depth image empty or all zero?)")
    spread = float(np.percentile(np.concatenate(values), percentile)) * margin
    return round(max(spread, floor_m), 4)


def input_to_display_rgb(model_input: np.ndarray) -> np.ndarray:
    """CxSxS model input -> SxSx3 uint8 for galleries and overlays (depth channel dropped)."""
    colour = model_input[:3] if model_input.shape[0] >= 3 else np.repeat(model_input[:1], 3, 0)
    return ((np.clip(colour, -1, 1) + 1) * 127.5).astype(np.uint8).transpose(1, 2, 0)
