"""One camera frame -> the part, its status and the model input: the function that training
(data/folders.py) and the live preprocess node both call, so what was trained is what runs.

With ``crop_mode="part"`` the crop is a square around the part that part_finder.py finds;
mode "height" gets the part's relative-height map (part_heights.py, 1 x S x S), mode
"part_colour" its orthographic colour view (part_colour.py, 3 x S x S) and voxel models the
part's voxel grid (part_voxels.py, 1 x R x R x R) instead of a crop.
With a fixed crop, the part is still looked for when depth is given (``find_part=True``, the
default): the verdict then carries the part's pose, and a frame with no part or unusable depth
is never scored as good.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .geometry import CameraIntrinsics
from .part_finder import (Box, FrameScratch, PartFinderConfig, PartObservation, PlaneHint,
                          Status, find_part, valid_depth)
from .part_colour import part_colour_map
from .part_heights import part_height_map
from .part_orientation import oriented_by_harmonic
from .part_voxels import part_voxel_grid
from .polar_view import to_polar
from .preprocessing import (MAP_MODES, PreprocessConfig, PreprocessError, crop_box_for,
                            preprocess_frame, resize_crop)


@dataclass
class FrameInput:
    """The outcome for one frame: ``model_input`` and ``crop`` are set when status is
    INSPECTED; ``detail`` says why not otherwise."""

    status: Status
    detail: str = ""
    model_input: Optional[np.ndarray] = None
    crop: Optional[Box] = None
    part: Optional[PartObservation] = None

    @property
    def inspected(self) -> bool:
        return self.status is Status.INSPECTED


def part_crop_box(footprint: Box, width: int, height: int, margin: float) -> Box:
    """A square around the part's footprint, ``margin`` of its side added on every side,
    shifted to lie inside the width x height image (and no larger than it)."""
    x, y, w, h = footprint
    side = int(round(max(w, h) * (1.0 + 2.0 * margin)))
    side = max(1, min(side, width, height))
    left = int(round(x + w / 2.0 - side / 2.0))
    top = int(round(y + h / 2.0 - side / 2.0))
    left = min(max(left, 0), width - side)
    top = min(max(top, 0), height - side)
    return (left, top, side, side)


def prepare_frame(rgb: np.ndarray, depth_m: Optional[np.ndarray],
                  intrinsics: Optional[CameraIntrinsics], config: PreprocessConfig,
                  finder: PartFinderConfig = PartFinderConfig(),
                  find_part_in_frame: bool = True, normalized: bool = True,
                  plane_hint: Optional[PlaneHint] = None,
                  scratch: Optional[FrameScratch] = None) -> FrameInput:
    """Find the part (when there is depth to find it in) and cut the model input.

    ``normalized`` False: ``model_input`` is the raw crop (resize_crop: colour 0..255, depth
    metres), which the live scorer normalises itself (scoring.Scorer.score_raw); training
    keeps the default, the normalised input. Voxel grids are the same either way.

    ``plane_hint``: the previous frame's plane (PlaneHint.from_observation(previous.part)),
    for a stream of frames from one camera (part_finder.find_part); ``scratch``: the
    stream's FrameScratch, so that finding the part allocates no full-frame arrays.

    Raises nothing for bad frames: a frame that cannot be used comes back INVALID_INPUT with
    the reason, one without a part NO_PART.
    """
    part = None
    try:
        wants_part = config.finds_part or (find_part_in_frame and depth_m is not None)
        if wants_part:
            if depth_m is None or intrinsics is None:
                return FrameInput(Status.INVALID_INPUT, "finding the part needs depth and the "
                                  "camera intrinsics, the frame has none")
            part = find_part(depth_m, intrinsics, finder, plane_hint, scratch)
            if not part.inspected:
                return FrameInput(part.status, part.detail, part=part)
            part = oriented_by_harmonic(part, config.part_orientation or 0)
        height, width = rgb.shape[:2]
        if config.mode == "voxel":   # the grid of the part; the crop only places the overlay
            grid = part_voxel_grid(part, config.size, config.voxel_kind, config.height_range_m)
            crop = part_crop_box(part.footprint, width, height, config.part_margin)
            return FrameInput(Status.INSPECTED, model_input=grid[None], crop=crop, part=part)
        if config.mode in MAP_MODES:  # likewise: the crop is where the map is drawn back
            crop = part_crop_box(part.footprint, width, height, config.part_margin)
            return FrameInput(Status.INSPECTED, model_input=part_map(part, rgb, config),
                              crop=crop, part=part)
        if config.crop_mode == "part":
            crop = part_crop_box(part.footprint, width, height, config.part_margin)
        else:
            crop = crop_box_for(config, width, height)
            reason = _unusable_depth_in_crop(depth_m, crop, config, finder)
            if reason:
                return FrameInput(Status.INVALID_INPUT, reason, part=part)
        cut = preprocess_frame if normalized else resize_crop
        model_input, crop = cut(rgb, depth_m, config, crop)
    except PreprocessError as exc:
        return FrameInput(Status.INVALID_INPUT, str(exc), part=part)
    return FrameInput(Status.INSPECTED, model_input=model_input, crop=crop, part=part)


def part_map(part: PartObservation, rgb: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """The model input of a map mode (MAP_MODES), C x S x S in [-1, 1]."""
    if config.mode == "height":
        square = part_height_map(part, config.size, config.height_range_m)[None]
    else:
        square = part_colour_map(part, rgb, config.size)
    return to_polar(square) if config.map_projection == "polar" else square


def _unusable_depth_in_crop(depth_m, crop: Box, config: PreprocessConfig,
                            finder: PartFinderConfig) -> str:
    """A fixed crop of a model that reads depth needs enough of it (all-zero or all-NaN depth
    would otherwise become a flat, perfectly "normal" depth channel)."""
    if not config.uses_depth or depth_m is None:
        return ""
    x, y, w, h = crop
    window = np.asarray(depth_m)[y:y + h, x:x + w]
    share = float(valid_depth(window, finder).mean()) if window.size else 0.0
    if share < finder.min_valid_fraction:
        return f"only {100 * share:.0f} % of the crop has valid depth"
    return ""
