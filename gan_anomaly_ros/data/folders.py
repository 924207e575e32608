"""Folder datasets in the MVTec AD layout, plain (RGB/gray) or RGB-D.

Plain layout::

    <root>/train/good/*.png|jpg            normal images for training
    <root>/test/good/*, <root>/test/<defect>/*
    <root>/ground_truth/<defect>/<stem>_mask.png

RGB-D layout: every ``<split>/<label>/`` folder holds ``rgb/`` and ``depth/`` with matching file
stems; depth as 16-bit PNG in millimetres (the RealSense convention), 32-bit float TIFF in
metres, or, with ``--depth-format``/``--depth-scale``, other encodings (see depth.py).

Every image goes through :func:`gan_anomaly_ros.preprocessing.preprocess_frame`, the same
function the live preprocess node calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional

import numpy as np
from PIL import Image

from ..progress import track
from ..perception.preprocessing import PreprocessConfig, crop_box_for, preprocess_frame, relative_depth_range
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
    if config.uses_depth:
        if frame.depth_path is None:
            raise DatasetError(f"mode 'rgbd' needs depth, but {frame.rgb_path} has none "
                               "(expected <split>/<label>/rgb and /depth folders)")
        depth = read_depth_m(frame.depth_path, depth_format)
        if depth.shape != rgb.shape[:2]:
            raise DatasetError(f"{frame.depth_path} is {depth.shape}, colour is {rgb.shape[:2]}")
    return rgb, depth


def read_mask(frame: FrameFile, config: PreprocessConfig, shape) -> np.ndarray:
    """Ground-truth mask cropped and resized like the input (empty for good frames)."""
    if frame.mask_path is None:
        return np.zeros((config.size, config.size), bool)
    with Image.open(frame.mask_path) as image:
        mask = np.asarray(image.convert("L"))
    if mask.shape != tuple(shape):
        mask = np.asarray(Image.fromarray(mask).resize((shape[1], shape[0]), Image.NEAREST))
    x, y, w, h = crop_box_for(config, shape[1], shape[0])
    crop = Image.fromarray(np.ascontiguousarray(mask[y:y + h, x:x + w]))
    return np.asarray(crop.resize((config.size, config.size), Image.NEAREST)) > 127


def iter_prepared(frames: List[FrameFile], config: PreprocessConfig,
                  depth_format: Optional[DepthFormat] = None) -> Iterator[tuple]:
    for frame in frames:
        rgb, depth = read_frame(frame, config, depth_format)
        model_input, _ = preprocess_frame(rgb, depth, config)
        yield frame, model_input, read_mask(frame, config, rgb.shape[:2])


def prepare_split(root, split: str, config: PreprocessConfig, progress: bool = True,
                  limit: Optional[int] = None,
                  depth_format: Optional[DepthFormat] = None) -> PreparedSplit:
    """Read and preprocess a whole split into memory (our datasets are hundreds of images)."""
    frames = list_split(root, split)
    if limit is not None:
        frames = frames[:limit]
    iterator = iter_prepared(frames, config, depth_format)
    if progress:
        iterator = track(iterator, total=len(frames), desc=f"reading {split}", unit="img")
    inputs, masks = [], []
    for _, model_input, mask in iterator:
        inputs.append(model_input)
        masks.append(mask)
    has_masks = any(f.mask_path is not None for f in frames)
    return PreparedSplit(
        inputs=np.stack(inputs),
        labels=np.array([int(f.is_anomalous) for f in frames]),
        masks=np.stack(masks) if has_masks else None,
        label_names=[f.label for f in frames],
        files=frames,
    )


def estimate_depth_range(root, config: PreprocessConfig,
                         depth_format: Optional[DepthFormat] = None, samples: int = 64) -> float:
    """The relative-depth range for ``config`` from the normal training images: a robust
    high percentile of the parts' relief (preprocessing.relative_depth_range) over up to
    ``samples`` evenly spaced frames of train/good."""
    frames = [f for f in list_split(root, "train") if not f.is_anomalous]
    picks = frames[::max(1, len(frames) // samples)][:samples]
    crops = []
    for frame in picks:
        rgb, depth = read_frame(frame, config, depth_format)
        x, y, w, h = crop_box_for(config, rgb.shape[1], rgb.shape[0])
        crops.append(depth[y:y + h, x:x + w])
    return relative_depth_range(crops, config.size)
