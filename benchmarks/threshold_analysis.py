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

It also sweeps k (the rule's number of sigmas): F1 and the share of good test images flagged
at each. ``--benchmark`` does this for every checkpoint model_zoo.py wrote and prints the
medians per dataset: what another default k would trade.

    python benchmarks/threshold_analysis.py --benchmark
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
from gan_anomaly_ros.metrics import auroc, threshold_metrics  # noqa: E402
from gan_anomaly_ros.training import predict_arrays  # noqa: E402
from gan_anomaly_ros.training.augment import memory_inputs  # noqa: E402
from gan_anomaly_ros.training.calibrate import training_split  # noqa: E402


K_SWEEP = (1.5, 2.0, 2.5, 3.0, 3.5, 4.0)


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

    by_k = {str(sweep): {"f1": threshold_metrics(test.labels, scores, centre + sweep * sigma)["f1"],
                         "false_alarms": float(np.mean(good > centre + sweep * sigma))}
            for sweep in K_SWEEP}
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
            "false_alarms_observed": float(np.mean(good > calibration.threshold)),
            "by_k": by_k}


def benchmark_sweep(args) -> str:
    """Every model_zoo.py checkpoint: the median F1 and false-alarm share per k and dataset."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from model_zoo import DATASETS, dataset_dir
    from gan_anomaly_ros.models import MODELS
    rows = {}
    for dataset in DATASETS:
        for model in MODELS:
            path = Path(args.out) / "checkpoints" / f"{model}_{dataset}.safetensors"
            if path.exists():
                rows[f"{model}/{dataset}"] = analyse(path, dataset_dir(dataset, args))["by_k"]
                print(f"{model}/{dataset}: {json.dumps(rows[f'{model}/{dataset}'])}", flush=True)
    (Path(args.out) / "threshold_k.json").write_text(json.dumps(rows, indent=2))
    lines = ["| dataset (checkpoints) | " + " | ".join(f"k = {k}" for k in K_SWEEP) + " |",
             "|---" * (len(K_SWEEP) + 1) + "|"]
    for dataset in DATASETS:
        mine = [v for key, v in rows.items() if key.endswith("/" + dataset)]
        if mine:
            cells = [f"{np.median([v[str(k)]['f1'] for v in mine]):.3f} / "
                     f"{np.median([v[str(k)]['false_alarms'] for v in mine]):.3f}"
                     for k in K_SWEEP]
            lines.append(f"| {dataset} ({len(mine)}) | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + ("\n\nMedian over the checkpoints of F1 / share of good test "
                               "images flagged, threshold = held-out median + k robust sigmas.\n")
    (Path(args.out) / "threshold_k.md").write_text(table)
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint (without --benchmark)")
    parser.add_argument("--data", help="its dataset (without --benchmark)")
    parser.add_argument("--score", default=None, help="score spec (default: the checkpoint's)")
    parser.add_argument("--benchmark", action="store_true",
                        help="the k sweep over every model_zoo.py checkpoint in --out")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "datasets"))
    args = parser.parse_args(argv)
    if args.benchmark:
        print(benchmark_sweep(args))
        return 0
    if not args.model or not args.data:
        parser.error("--model and --data are required without --benchmark")
    print(json.dumps(analyse(args.model, args.data, args.score), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
