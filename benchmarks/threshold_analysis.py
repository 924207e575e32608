"""Why can the unsupervised threshold flag (almost) nothing while the AUROC says the scores do
separate good from bad? This measures it for one checkpoint and score.

    python benchmarks/threshold_analysis.py --model benchmarks/results/checkpoints/ganomaly_magnetic_tile.safetensors \\
        --data ../shared/datasets/magnetic_tile --score native

It prints, in units of the held-out normal images' robust sigma (the unit the default rule
uses): where the threshold sits (k sigmas above their median), where the test split's good and
defective images sit, the separation d' = (defective median - good median) / sigma, the recall
a Gaussian model of the scores predicts at the threshold, and what was observed. A threshold
k = 3 sigmas above normal catches few defects unless d' is well above 3 - 1, whatever the AUROC
(AUROC 0.74 is d' of about 0.9).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import norm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan_anomaly_ros.calibration import calibrate, robust_sigma  # noqa: E402
from gan_anomaly_ros.checkpoint import load_checkpoint  # noqa: E402
from gan_anomaly_ros.data.folders import prepare_split  # noqa: E402
from gan_anomaly_ros.metrics import auroc  # noqa: E402
from gan_anomaly_ros.training import predict_arrays  # noqa: E402
from gan_anomaly_ros.training.augment import memory_inputs  # noqa: E402
from gan_anomaly_ros.training.calibrate import training_split  # noqa: E402


def analyse(checkpoint_path, data_dir, score=None, device="cpu") -> dict:
    checkpoint = load_checkpoint(checkpoint_path, device=device)
    model = checkpoint.model
    normal, train_idx, hold_idx = training_split(checkpoint, data_dir, progress=False)
    if score is not None:
        model.set_score(score)
        model.fit_score(memory_inputs(torch.from_numpy(normal[train_idx]),
                                      checkpoint.training.get("augment") or {},
                                      checkpoint.preprocessing.colour_channels),
                        reference=torch.from_numpy(normal[hold_idx]))
    held, held_maps = predict_arrays(model, normal[hold_idx], device)
    test = prepare_split(data_dir, "test", checkpoint.preprocessing, progress=False)
    scores, _ = predict_arrays(model, test.inputs, device)
    calibration = calibrate(held, held_maps)
    centre, sigma = float(np.median(held)), max(robust_sigma(held), 1e-12)
    good, bad = scores[test.labels == 0], scores[test.labels == 1]

    def units(values):
        return float((np.median(values) - centre) / sigma)

    k = (calibration.threshold - centre) / sigma
    d_prime = units(bad) - units(good)
    good_spread = robust_sigma(good) / sigma
    return {"score": model.score_spec.text(), "n_held_out": int(len(held)),
            "image_auroc": auroc(test.labels, scores),
            "threshold_sigmas": round(k, 2),
            "test_good_median_sigmas": round(units(good), 2),
            "test_good_spread_vs_held_out": round(good_spread, 2),
            "test_defective_median_sigmas": round(units(bad), 2),
            "d_prime": round(d_prime, 2),
            "recall_predicted": float(norm.sf(k - units(bad))),
            "recall_observed": float(np.mean(bad > calibration.threshold)),
            "false_alarms_predicted": float(norm.sf(k - units(good))),
            "false_alarms_observed": float(np.mean(good > calibration.threshold))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--score", default=None, help="score spec (default: the checkpoint's)")
    args = parser.parse_args(argv)
    print(json.dumps(analyse(args.model, args.data, args.score), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
