"""Train and evaluate every model on the shared datasets and write a results table.

    python benchmarks/model_zoo.py                       # everything (long: hours on 2 cores)
    python benchmarks/model_zoo.py --models ganomaly --datasets magnetic_tile
    python benchmarks/model_zoo.py --epochs 5            # a quick pass with fewer epochs

For each (model, dataset) it trains with `train_from_folder` (the code `gan-anomaly train`
runs), evaluates the test split with `evaluate_folder` (the code `gan-anomaly eval` runs, ROC
curve and heatmap gallery included) and records image AUROC, pixel AUROC, F1 at the calibrated
threshold, training time and ms per image. Results go to <out>/results.json (merged with earlier
runs, so models can be run one at a time) and <out>/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan_anomaly_ros.checkpoint import load_checkpoint  # noqa: E402
from gan_anomaly_ros.evaluation import evaluate_folder  # noqa: E402
from gan_anomaly_ros.models import MODELS  # noqa: E402
from gan_anomaly_ros.preprocessing import PreprocessConfig  # noqa: E402
from gan_anomaly_ros.training import TrainConfig, train_from_folder  # noqa: E402

DATASETS = {"magnetic_tile": "gray", "ball_screw": "rgb"}
# Per-model benchmark settings (epochs, batch size, hyper-parameters) for 64 px inputs.
# The papers' learning rates are tuned for long GPU runs; the faster ones here come from the
# short CPU sanity runs noted in each model's tests and reports.
SETTINGS = {
    "ganomaly": {"epochs": 30, "batch_size": 32, "hparams": {"lr": 1e-3}},
    "skip_ganomaly": {"epochs": 30, "batch_size": 32, "hparams": {}},
    "f_anogan": {"epochs": 60, "batch_size": 32,
                 "hparams": {"lr": 1e-3, "encoder_lr": 1e-3, "gan_epochs_fraction": 0.67}},
    # ALICE's cycle term: pure EGBAD reconstructions ignore the input at CPU training lengths.
    "bigan": {"epochs": 30, "batch_size": 32, "hparams": {"lr": 1e-3, "cycle_weight": 1.0}},
    # Latent-search models calibrate once, after the last epoch (a search per held-out image).
    "anogan": {"epochs": 30, "batch_size": 32, "hparams": {}, "calibrate_every": 30},
    "adgan": {"epochs": 30, "batch_size": 32, "hparams": {}, "calibrate_every": 30},
    "transgan": {"epochs": 30, "batch_size": 32, "hparams": {"lr": 1e-3},
                 "calibrate_every": 30},
}
DEFAULT_SETTINGS = {"epochs": 30, "batch_size": 32, "hparams": {}}


def run_one(model: str, dataset: str, args, previous: dict = None) -> dict:
    data = Path(args.data_root) / dataset
    settings = SETTINGS.get(model, DEFAULT_SETTINGS)
    epochs = args.epochs or settings["epochs"]
    preprocessing = PreprocessConfig(mode=DATASETS[dataset], size=args.size)
    config = TrainConfig(model=model, epochs=epochs, batch_size=settings["batch_size"],
                         seed=args.seed, device=args.device, hparams=settings["hparams"],
                         calibrate_every=settings.get("calibrate_every", 1))
    checkpoint = Path(args.out) / "checkpoints" / f"{model}_{dataset}.safetensors"
    if args.eval_only:  # keep the measured training time of the run that wrote the checkpoint
        train_seconds = (previous or {}).get("train_seconds",
                                             load_checkpoint(checkpoint).training["train_seconds"])
    else:
        started = time.perf_counter()
        train_from_folder(data, checkpoint, preprocessing, config)
        train_seconds = time.perf_counter() - started
    metrics = evaluate_folder(checkpoint, data, device=args.device,
                              out_dir=Path(args.out) / f"{model}_{dataset}")
    return {"model": model, "dataset": dataset, "epochs": epochs, "size": args.size,
            "image_auroc": metrics["image_auroc"], "pixel_auroc": metrics.get("pixel_auroc"),
            "f1": metrics["f1"], "accuracy": metrics["accuracy"],
            "calibration_rule": load_checkpoint(checkpoint).calibration.rule,
            "train_seconds": round(train_seconds, 1),
            "ms_per_image": round(metrics["ms_per_image"], 2)}


def write_table(results: dict, out: Path) -> str:
    lines = ["| model | dataset | image AUROC | pixel AUROC | F1 | accuracy | train time (s) "
             "| ms/image | epochs |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in sorted(results.values(), key=lambda r: (r["model"], r["dataset"])):
        pixel = f"{row['pixel_auroc']:.3f}" if row["pixel_auroc"] is not None else "-"
        lines.append(f"| {row['model']} | {row['dataset']} | {row['image_auroc']:.3f} | {pixel} "
                     f"| {row['f1']:.3f} | {row['accuracy']:.3f} | {row['train_seconds']:.0f} "
                     f"| {row['ms_per_image']:.1f} | {row['epochs']} |")
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
               f"({torch.get_num_threads()} threads)")
    settings = "\n".join(f"- {name}: batch {s['batch_size']}, hparams {json.dumps(s['hparams'])}"
                         for name, s in SETTINGS.items())
    sizes = ", ".join(str(size) for size in sorted({row["size"] for row in results.values()}))
    text = ("\n".join(lines) + f"\n\nInputs: magnetic_tile gray, ball_screw RGB, {sizes} px, whole "
            "image; "
            "F1 and accuracy at the checkpoint's calibrated threshold (median + 3 * 1.4826 * MAD of "
            "held-out normal scores); ms/image: evaluation with batch 32.\n\n"
            f"Per-model settings:\n{settings}\n\nLast run on: {machine}\n")
    (out / "results.md").write_text(text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, help="override every model's epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--eval-only", action="store_true",
                        help="evaluate the checkpoints of an earlier run again (e.g. after "
                             "`gan-anomaly calibrate`), keeping its training times")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    for model in args.models.split(","):
        for dataset in args.datasets.split(","):
            print(f"=== {model} on {dataset}", flush=True)
            row = run_one(model, dataset, args, results.get(f"{model}/{dataset}"))
            row["device"] = args.device
            results[f"{model}/{dataset}"] = row
            results_file.write_text(json.dumps(results, indent=2))
            print(json.dumps(row), flush=True)
    print(write_table(results, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
