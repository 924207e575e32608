"""The floor every model must beat: nearest-neighbour distance on pixels, no learning at all.

A test image's score is the Euclidean distance of its pixels (32 x 32, raw or per-image
standardised) to the nearest normal training image. The threshold follows the project's
default rule on the same held-out 10 % of train/good that training keeps out, so F1 compares
like with like.

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
from gan_anomaly_ros.perception.preprocessing import PreprocessConfig  # noqa: E402
from gan_anomaly_ros.training import split_holdout  # noqa: E402

FLOOR_SIZE = 32
VARIANTS = {"nn_raw_pixels": "none", "nn_standardized_pixels": "standardize"}


def nearest_distances(queries: np.ndarray, bank: np.ndarray) -> np.ndarray:
    q = torch.from_numpy(queries.reshape(len(queries), -1))
    b = torch.from_numpy(bank.reshape(len(bank), -1))
    return torch.cdist(q, b).min(dim=1).values.numpy()


def floor_rows(data_dir, preprocessing: PreprocessConfig, seed: int = 0,
               holdout: float = 0.1) -> dict:
    """{variant: metrics} for the raw and the standardised nearest-neighbour floor."""
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
        rows[name] = {"image_auroc": auroc(test.labels, scores), "pixel_auroc": None,
                      **threshold_metrics(test.labels, scores, calibration.threshold)}
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--mode", default="rgb", choices=["rgb", "gray", "rgbd"])
    parser.add_argument("--center-crop", type=float, default=0.0)
    args = parser.parse_args(argv)
    config = PreprocessConfig(mode=args.mode, size=FLOOR_SIZE, center_crop=args.center_crop,
                              depth_range_m=0.04)
    print(json.dumps(floor_rows(args.dataset, config), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
