"""The floor every model must beat: nearest-neighbour distance on pixels, no learning at all.

A test image's score is the Euclidean distance of its pixels (32 x 32, raw or per-image
standardised) to the nearest normal training image. The threshold follows the project's
default rule on the same held-out 10 % of train/good that training keeps out, so F1 compares
like with like.

The pixel floor (datasets with masks): at the models' input size, every 8 x 8 patch (stride 4)
of a test image is scored by its distance to the nearest patch of any normal training image,
wherever it lay (PatchCore's memory on raw pixels); the patch distances, upsampled and smoothed
like the models' maps, are the anomaly map whose pixel AUROC is reported.

    python benchmarks/nn_floor.py --dataset ../shared/datasets/magnetic_tile --mode gray
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan_anomaly_ros.calibration import calibrate  # noqa: E402
from gan_anomaly_ros.data.folders import prepare_split  # noqa: E402
from gan_anomaly_ros.metrics import auroc, threshold_metrics  # noqa: E402
from gan_anomaly_ros.models.maps import default_sigma, gaussian_blur  # noqa: E402
from gan_anomaly_ros.perception.preprocessing import PreprocessConfig  # noqa: E402
from gan_anomaly_ros.training import split_holdout  # noqa: E402

FLOOR_SIZE = 32
VARIANTS = {"nn_raw_pixels": "none", "nn_standardized_pixels": "standardize"}
PATCH, PATCH_STRIDE = 8, 4
QUERY_BLOCK = 2048


def nearest_distances(queries: np.ndarray, bank: np.ndarray) -> np.ndarray:
    q = torch.from_numpy(queries.reshape(len(queries), -1))
    b = torch.from_numpy(bank.reshape(len(bank), -1))
    return torch.cdist(q, b).min(dim=1).values.numpy()


def patches(images: np.ndarray) -> torch.Tensor:
    """N x C x S x S -> N x L x (C * PATCH^2): every PATCH x PATCH window, stride PATCH_STRIDE."""
    windows = torch.nn.functional.unfold(torch.from_numpy(images).float(), PATCH,
                                         stride=PATCH_STRIDE)
    return windows.transpose(1, 2)


def nearest_row_distances(queries: torch.Tensor, stored: torch.Tensor) -> torch.Tensor:
    """Q x D, M x D -> Q: each query row's Euclidean distance to its nearest stored row, in
    blocks of queries (|q|^2 + |s|^2 - 2 q.s, one matrix product per block)."""
    stored_sq = (stored * stored).sum(dim=1)
    nearest = torch.cat([torch.addmm(stored_sq, block, stored.t(), alpha=-2.0).amin(dim=1)
                         + (block * block).sum(dim=1)
                         for block in queries.split(QUERY_BLOCK)])
    return nearest.clamp_min(0).sqrt()


def patch_distance_maps(queries: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """N x S x S maps: each patch's distance to the nearest bank patch at any position,
    upsampled to the input and smoothed as the models' maps are."""
    nearest = nearest_row_distances(patches(queries).flatten(0, 1),
                                    patches(bank).flatten(0, 1))
    size = queries.shape[-1]
    side = (size - PATCH) // PATCH_STRIDE + 1
    grid = nearest.view(len(queries), 1, side, side)
    maps = torch.nn.functional.interpolate(grid, size=(size, size), mode="bilinear",
                                           align_corners=False)[:, 0]
    return gaussian_blur(maps, default_sigma(size)).numpy()


def pixel_floor(data_dir, config: PreprocessConfig, bank_idx) -> float:
    """Pixel AUROC of the patch nearest-neighbour maps at the models' input size."""
    train = prepare_split(data_dir, "train", config, progress=False)
    test = prepare_split(data_dir, "test", config, progress=False)
    if test.masks is None:
        return None
    bank = train.inputs[train.labels == 0][bank_idx]
    return auroc(test.masks.ravel(), patch_distance_maps(test.inputs, bank).ravel())


def floor_rows(data_dir, preprocessing: PreprocessConfig, seed: int = 0,
               holdout: float = 0.1, pixels: bool = True) -> dict:
    """{variant: metrics} for the raw and the standardised nearest-neighbour floor; with
    ``pixels``, the patch floor's pixel AUROC at the preprocessing's size too."""
    rows = {}
    for name, normalize in VARIANTS.items():
        config = replace(preprocessing, size=FLOOR_SIZE, normalize=normalize)
        train = prepare_split(data_dir, "train", config, progress=False)
        test = prepare_split(data_dir, "test", config, progress=False)
        normal = train.inputs[train.labels == 0]
        bank_idx, hold_idx = split_holdout(len(normal), holdout, seed)
        bank = normal[bank_idx]
        held_scores = nearest_distances(normal[hold_idx], bank)
        calibration = calibrate(held_scores, np.zeros((len(hold_idx), 1, 1)))
        scores = nearest_distances(test.inputs, bank)
        pixel = (pixel_floor(data_dir, replace(preprocessing, normalize=normalize), bank_idx)
                 if pixels and test.masks is not None else None)
        rows[name] = {"image_auroc": auroc(test.labels, scores), "pixel_auroc": pixel,
                      **threshold_metrics(test.labels, scores, calibration.threshold)}
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--mode", default="rgb", choices=["rgb", "gray", "rgbd"])
    parser.add_argument("--center-crop", type=float, default=0.0)
    parser.add_argument("--size", type=int, default=64, help="input size of the pixel floor")
    parser.add_argument("--no-pixels", action="store_true", help="image floors only")
    args = parser.parse_args(argv)
    config = PreprocessConfig(mode=args.mode, size=args.size, center_crop=args.center_crop,
                              depth_range_m=0.04)
    print(json.dumps(floor_rows(args.dataset, config, pixels=not args.no_pixels), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
