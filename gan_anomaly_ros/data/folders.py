"""Folder datasets in the MVTec AD layout, plain (RGB/gray) or RGB-D.

Plain layout::

    <root>/train/good/*.png|jpg            normal images for training
    <root>/test/good/*, <root>/test/<defect>/*
    <root>/ground_truth/<defect>/<stem>_mask.png

RGB-D layout: every ``<split>/<label>/`` folder holds ``rgb/`` and ``depth/`` with matching file
stems; depth as 16-bit PNG in millimetres (the RealSense convention), 32-bit float TIFF in
metres, or, with ``--depth-format``/``--depth-scale``, other encodings (see depth.py).

Every image goes through :func:`gan_anomaly_ros.perception.frame_input.prepare_frame`, the
same function the live preprocess node calls. With part crops (``crop_mode="part"``) the part
is found in each frame's depth with the intrinsics of ``<root>/camera_info.json`` (written by
`gan-anomaly synth`; see CameraIntrinsics.to_dict), or, without that file, a guess from the
image size (geometry.intrinsics_for_image). Frames in which no part is found are left out and
reported (PreparedSplit.skipped).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, List, Optional

import numpy as np
from PIL import Image

import json
import sys

from ..perception.frame_input import prepare_frame
from ..perception.geometry import CameraIntrinsics, intrinsics_for_image
from ..perception.part_heights import part_map_mask
from ..perception.part_orientation import choose_harmonic
from ..perception.preprocessing import (MAP_MODES, PreprocessConfig, crop_box_for,
                                        relative_depth_range)
from ..progress import track
from .depth import DepthFormat, DepthFormatError, read_depth_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


class DatasetError(ValueError):
    """The data folder is not usable; the message names the folder or file."""


@dataclass
class FrameFile:
    """One image of the dataset (paths only; pixels are read on demand)."""

    rgb_path: Path
    depth_path: Optional[Path]
    label: str
    mask_path: Optional[Path]

    @property
    def is_anomalous(self) -> bool:
        return self.label != "good"


@dataclass
class PreparedSplit:
    """A split turned into model inputs, ready for training or evaluation."""

    inputs: np.ndarray          # N x C x S x S float32
    labels: np.ndarray          # N int (1 = anomalous)
    masks: Optional[np.ndarray]  # N x S x S bool, or None when no image has a mask
    label_names: List[str]
    files: List[FrameFile]
    # Frames left out because the part was not found: (file, status name, reason).
    skipped: List[tuple] = None


def _images_in(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def is_rgbd_folder(folder: Path) -> bool:
    return (folder / "rgb").is_dir() and (folder / "depth").is_dir()


def _frames_in(root: Path, split: str, label: str) -> List[FrameFile]:
    folder = root / split / label
    mask_dir = root / "ground_truth" / label
    frames = []
    if is_rgbd_folder(folder):
        depths = {p.stem: p for p in _images_in(folder / "depth")}
        for rgb in _images_in(folder / "rgb"):
            if rgb.stem not in depths:
                raise DatasetError(f"{rgb} has no depth image {folder / 'depth' / rgb.stem}.*")
            frames.append(FrameFile(rgb, depths[rgb.stem], label, None))
    else:
        frames = [FrameFile(p, None, label, None) for p in _images_in(folder)]
    for frame in frames:
        mask = mask_dir / f"{frame.rgb_path.stem}_mask.png"
        frame.mask_path = mask if label != "good" and mask.exists() else None
    return frames


def list_split(root, split: str) -> List[FrameFile]:
    """All frames of ``train`` or ``test``, good first, then defect types alphabetically."""
    root = Path(root)
    split_dir = root / split
    if split == "train" and not (split_dir / "good").is_dir():
        raise DatasetError(f"{root} is not a dataset folder: it has no train/good/ "
                           "(expected the MVTec AD layout, see gan_anomaly_ros.data.folders)")
    if not split_dir.is_dir():
        raise DatasetError(f"{root} has no {split}/ folder")
    labels = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    labels.sort(key=lambda name: name != "good")
    frames = [f for label in labels for f in _frames_in(root, split, label)]
    if not frames:
        raise DatasetError(f"no images found under {split_dir}")
    return frames


def read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
    except Exception as exc:  # PIL raises many types for broken files
        raise DatasetError(f"cannot read image {path}: {exc}") from exc
    if rgb.size == 0:
        raise DatasetError(f"empty image {path}")
    return rgb


def read_depth_m(path: Path, depth_format: Optional[DepthFormat] = None) -> np.ndarray:
    """A depth image -> float32 metres (0 = invalid), its unit found as depth.py describes."""
    try:
        return (depth_format or DepthFormat()).to_metres(read_depth_image(path), path)
    except DepthFormatError as exc:
        raise DatasetError(str(exc)) from exc


def read_frame(frame: FrameFile, config: PreprocessConfig,
               depth_format: Optional[DepthFormat] = None):
    """-> (rgb uint8, depth metres or None) for one dataset frame."""
    rgb = read_rgb(frame.rgb_path)
    depth = None
    if config.uses_depth or config.finds_part:
        if frame.depth_path is None:
            needs = f"mode {config.mode!r} needs" if config.uses_depth else "part crops need"
            raise DatasetError(f"{needs} depth, but {frame.rgb_path} has none "
                               "(expected <split>/<label>/rgb and /depth folders)")
        depth = read_depth_m(frame.depth_path, depth_format)
        if depth.shape != rgb.shape[:2]:
            raise DatasetError(f"{frame.depth_path} is {depth.shape}, colour is {rgb.shape[:2]}")
    return rgb, depth


def read_full_mask(frame: FrameFile, shape) -> np.ndarray:
    """The ground-truth mask at the image's size (H x W uint8, > 127 = defect; all 0 for
    frames without one)."""
    if frame.mask_path is None:
        return np.zeros(tuple(shape), np.uint8)
    with Image.open(frame.mask_path) as image:
        mask = np.asarray(image.convert("L"))
    if mask.shape != tuple(shape):
        mask = np.asarray(Image.fromarray(mask).resize((shape[1], shape[0]), Image.NEAREST))
    return mask


def read_mask(frame: FrameFile, config: PreprocessConfig, shape, crop=None) -> np.ndarray:
    """Ground-truth mask cropped (``crop``, else the fixed crop) and resized like the input
    (empty for good frames)."""
    if frame.mask_path is None:
        return np.zeros((config.size, config.size), bool)
    mask = read_full_mask(frame, shape)
    x, y, w, h = crop if crop is not None else crop_box_for(config, shape[1], shape[0])
    crop = Image.fromarray(np.ascontiguousarray(mask[y:y + h, x:x + w]))
    return np.asarray(crop.resize((config.size, config.size), Image.NEAREST)) > 127


def dataset_intrinsics(root, width: int, height: int) -> CameraIntrinsics:
    """The camera of a dataset: ``<root>/camera_info.json`` (scaled when the images have
    another size), else a guess from the image size (fine for finding a part, not metric)."""
    path = Path(root) / "camera_info.json"
    if not path.exists():
        return intrinsics_for_image(width, height)
    try:
        intrinsics = CameraIntrinsics.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: not usable camera intrinsics ({exc})") from exc
    if (intrinsics.width, intrinsics.height) != (width, height):
        intrinsics = intrinsics.scaled(width, height)
    return intrinsics


def iter_prepared(frames: List[FrameFile], config: PreprocessConfig,
                  depth_format: Optional[DepthFormat] = None, root=None) -> Iterator[tuple]:
    """-> (frame, FrameInput, mask) per frame, through the live nodes' prepare_frame."""
    for frame in frames:
        rgb, depth = read_frame(frame, config, depth_format)
        intrinsics = None
        if depth is not None and config.finds_part:
            intrinsics = dataset_intrinsics(root or frame.rgb_path.parents[3], rgb.shape[1],
                                            rgb.shape[0])
        prepared = prepare_frame(rgb, depth, intrinsics, config,
                                 find_part_in_frame=config.finds_part)
        mask = None
        if prepared.inspected and config.mode in MAP_MODES:  # the mask in the map's cells
            mask = part_map_mask(prepared.part, read_full_mask(frame, rgb.shape[:2]) > 127,
                                 depth, intrinsics, config.size, config.map_projection)
        elif prepared.inspected:
            mask = read_mask(frame, config, rgb.shape[:2], prepared.crop)
        yield frame, prepared, mask


def prepare_split(root, split: str, config: PreprocessConfig, progress: bool = True,
                  limit: Optional[int] = None,
                  depth_format: Optional[DepthFormat] = None) -> PreparedSplit:
    """Read and preprocess a whole split into memory (our datasets are hundreds of images)."""
    frames = list_split(root, split)
    if limit is not None:
        frames = frames[:limit]
    iterator = iter_prepared(frames, config, depth_format, root)
    if progress:
        iterator = track(iterator, total=len(frames), desc=f"reading {split}", unit="img")
    inputs, masks, kept, skipped = [], [], [], []
    for frame, prepared, mask in iterator:
        if not prepared.inspected:
            skipped.append((frame, prepared.status.name, prepared.detail))
            continue
        inputs.append(prepared.model_input)
        masks.append(mask)
        kept.append(frame)
    if skipped:
        print(f"warning: {len(skipped)} of {len(frames)} {split} frames left out, no part "
              f"found: e.g. {skipped[0][0].rgb_path}: {skipped[0][1]} ({skipped[0][2]})",
              file=sys.stderr)
    if not kept:
        raise DatasetError(f"no usable frame in {Path(root) / split}: e.g. "
                           f"{skipped[0][0].rgb_path}: {skipped[0][1]} ({skipped[0][2]}). "
                           "For images without a part on a supporting plane use --crop fixed")
    has_masks = any(f.mask_path is not None for f in kept)
    return PreparedSplit(
        inputs=np.stack(inputs),
        labels=np.array([int(f.is_anomalous) for f in kept]),
        masks=np.stack(masks) if has_masks else None,
        label_names=[f.label for f in kept],
        files=kept,
        skipped=skipped,
    )


def estimate_part_orientation(root, config: PreprocessConfig,
                              depth_format: Optional[DepthFormat] = None,
                              samples: int = 48) -> tuple:
    """(k, strength) of the training parts' k-fold angular pattern (part_orientation.py,
    choose_harmonic; k = 0: the principal axes) over up to ``samples`` evenly spaced frames
    of train/good."""
    frames = [f for f in list_split(root, "train") if not f.is_anomalous]
    picks = frames[::max(1, len(frames) // samples)][:samples]
    probe = replace(config, part_orientation=0, map_projection="cartesian")
    parts = [prepared.part for _, prepared, _ in iter_prepared(picks, probe, depth_format, root)
             if prepared.inspected]
    if not parts:
        raise DatasetError(f"no part found in any of {len(picks)} training frames of {root}: "
                           "cannot choose the part's orientation")
    return choose_harmonic(parts)


def estimate_depth_range(root, config: PreprocessConfig,
                         depth_format: Optional[DepthFormat] = None, samples: int = 64) -> float:
    """The relative-depth range for ``config`` from the normal training images: a robust
    high percentile of the parts' relief (preprocessing.relative_depth_range) over up to
    ``samples`` evenly spaced frames of train/good, cropped as training will crop them."""
    frames = [f for f in list_split(root, "train") if not f.is_anomalous]
    picks = frames[::max(1, len(frames) // samples)][:samples]
    # Any range will do to find the crops: only the crop boxes are used here.
    probe = replace(config, depth_range_m=config.depth_range_m or 1.0)
    crops, first_miss = [], None
    for frame, prepared, _ in iter_prepared(picks, probe, depth_format, root):
        if prepared.inspected:
            x, y, w, h = prepared.crop
            crops.append(read_frame(frame, config, depth_format)[1][y:y + h, x:x + w])
        elif first_miss is None:
            first_miss = f"{frame.rgb_path}: {prepared.status.name} ({prepared.detail})"
    if not crops and first_miss:
        raise DatasetError(f"no part found in any of {len(picks)} training frames, e.g. "
                           f"{first_miss}. For images without a part on a supporting plane "
                           "use --crop fixed")
    return relative_depth_range(crops, config.size)
