"""Train and evaluate every model on the benchmark datasets and write a results table.

    python benchmarks/model_zoo.py                       # everything (hours on 2 cores)
    python benchmarks/model_zoo.py --models ganomaly --datasets magnetic_tile
    python benchmarks/model_zoo.py --eval-only           # rescore earlier checkpoints (e.g. after
                                                         # a default score changed)
    python benchmarks/model_zoo.py --models ""           # the nearest-neighbour floors only

Datasets: the two shared industrial sets (../shared/datasets) and synthetic RGB-D scenes (4
channels, written by the project's generator into <out>/data on first use). Every model runs
with its defaults, the same on every dataset (no per-dataset tuning: what a user gets from
`gan-anomaly train --model NAME`): 64 px, per-image standardised colour, 30 epochs, the
model's default score for the input (RGB, gray, RGB-D). For each (model, dataset) it trains with `train_from_folder` (the code
`gan-anomaly train` runs), evaluates the test split with `evaluate_folder` (the code
`gan-anomaly eval` runs, ROC curve and heatmap gallery included) and records image AUROC, pixel
AUROC, F1 and accuracy at the default threshold, training time and ms per image. Two rows per
dataset are the nearest-neighbour floor on raw and on standardised pixels (nn_floor.py).
Results go to <out>/results.json (merged with earlier runs) and <out>/results.md.
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from nn_floor import floor_rows  # noqa: E402

from gan_anomaly_ros.checkpoint import load_checkpoint  # noqa: E402
from gan_anomaly_ros.cli import parse_hparam  # noqa: E402
from gan_anomaly_ros.data.synthetic import write_dataset  # noqa: E402
from gan_anomaly_ros.evaluation import evaluate_folder  # noqa: E402
from gan_anomaly_ros.models import MODELS  # noqa: E402
from gan_anomaly_ros.perception.preprocessing import PreprocessConfig  # noqa: E402
from gan_anomaly_ros.training import TrainConfig, recalibrate_checkpoint, train_from_folder  # noqa: E402,E501
from gan_anomaly_ros.training.run import resolve_preprocessing  # noqa: E402

DATASETS = {
    "magnetic_tile": {"mode": "gray"},
    "ball_screw": {"mode": "rgb"},
    # The synthetic scenes are 640x480 with the part in the middle: the centre crop the demo
    # uses. 200 training scenes, 40 good and 20 per defect type for testing.
    "synthetic_rgbd": {"mode": "rgbd", "center_crop": 0.4,
                       "generate": {"n_train": 200, "n_test_good": 40, "n_test_per_defect": 20,
                                    "seed": 0}},
}
EPOCHS = 30
FLOORS = ("nn_raw_pixels", "nn_standardized_pixels")


def dataset_dir(name: str, args) -> Path:
    spec = DATASETS[name]
    if "generate" not in spec:
        return Path(args.data_root) / name
    folder = Path(args.out) / "data" / name
    if not (folder / "train" / "good").is_dir():
        print(f"writing the synthetic dataset to {folder}", flush=True)
        write_dataset(folder, **spec["generate"])
    return folder


def preprocessing_for(name: str, args) -> PreprocessConfig:
    spec = DATASETS[name]
    return PreprocessConfig(mode=spec["mode"], size=args.size,
                            center_crop=spec.get("center_crop", 0.0),
                            depth_range_m=None if spec["mode"] == "rgbd" else 0.04,
                            normalize=args.normalize)


def run_model(model: str, dataset: str, args, previous: dict = None) -> dict:
    data = dataset_dir(dataset, args)
    checkpoint = Path(args.out) / "checkpoints" / f"{model}_{dataset}.safetensors"
    # What `gan-anomaly train --model NAME` gives on this kind of input.
    score = args.score or MODELS[model].default_score_for(DATASETS[dataset]["mode"])
    if args.eval_only:  # keep the measured training time of the run that wrote the checkpoint
        train_seconds = (previous or {}).get("train_seconds",
                                             load_checkpoint(checkpoint).training["train_seconds"])
        recalibrate_checkpoint(checkpoint, data, score=score, device=args.device, progress=False)
    else:
        config = TrainConfig(model=model, epochs=args.epochs, seed=args.seed, device=args.device,
                             score=score, augment=args.augment, patch_size=args.patch_size,
                             hparams=dict(args.hparam or []))
        started = time.perf_counter()
        train_from_folder(data, checkpoint, preprocessing_for(dataset, args), config)
        train_seconds = time.perf_counter() - started
    metrics = evaluate_folder(checkpoint, data, device=args.device, progress=False,
                              out_dir=Path(args.out) / f"{model}_{dataset}")
    return {"model": model, "dataset": dataset, "epochs": args.epochs, "size": args.size,
            "normalize": args.normalize, "augment": args.augment, "patch_size": args.patch_size,
            "hparams": dict(args.hparam or []),
            "score": metrics["score"], "image_auroc": metrics["image_auroc"],
            "pixel_auroc": metrics.get("pixel_auroc"), "f1": metrics["f1"],
            "accuracy": metrics["accuracy"], "threshold_rule": metrics["threshold_rule"],
            "per_type": {k: v.get("image_auroc") for k, v in metrics["per_type"].items()
                         if k != "good"},
            "train_seconds": round(train_seconds, 1),
            "ms_per_image": round(metrics["ms_per_image"], 2)}


def run_floors(dataset: str, args) -> dict:
    data = dataset_dir(dataset, args)
    config = resolve_preprocessing(data, preprocessing_for(dataset, args))
    rows = {}
    for name, metrics in floor_rows(data, config, seed=args.seed).items():
        # Image floor at 32 px; pixel floor (8 px patches) at the models' size.
        rows[name] = {"model": name, "dataset": dataset, "epochs": 0, "size": 32,
                      "pixel_size": config.size,
                      "score": "nearest neighbour", "train_seconds": 0.0, "ms_per_image": None,
                      "image_auroc": metrics["image_auroc"],
                      "pixel_auroc": metrics["pixel_auroc"],
                      "f1": metrics["f1"], "accuracy": metrics["accuracy"]}
    return rows


def _fmt(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def write_table(results: dict, out: Path, args) -> str:
    lines = ["| model | dataset | score | image AUROC | pixel AUROC | F1 | accuracy "
             "| train time (s) | ms/image |",
             "|---|---|---|---|---|---|---|---|---|"]
    order = {name: i for i, name in enumerate(list(FLOORS) + list(MODELS))}
    for row in sorted(results.values(), key=lambda r: (r["dataset"], order.get(r["model"], 99))):
        lines.append(f"| {row['model']} | {row['dataset']} | {row['score']} "
                     f"| {_fmt(row['image_auroc'])} | {_fmt(row['pixel_auroc'])} "
                     f"| {_fmt(row['f1'])} | {_fmt(row['accuracy'])} "
                     f"| {row['train_seconds']:.0f} | {_fmt(row['ms_per_image'], 1)} |")
    summary = ["", "| dataset | best model | its image AUROC | better floor | floor AUROC "
                   "| models below the raw floor |", "|---|---|---|---|---|---|"]
    for dataset in sorted({r["dataset"] for r in results.values()}):
        rows = [r for r in results.values() if r["dataset"] == dataset]
        models = [r for r in rows if r["model"] not in FLOORS]
        floors = [r for r in rows if r["model"] in FLOORS]
        if not models or not floors:
            continue
        best = max(models, key=lambda r: r["image_auroc"])
        floor = max(floors, key=lambda r: r["image_auroc"])
        raw = next((r["image_auroc"] for r in floors if r["model"] == "nn_raw_pixels"), None)
        below = [r["model"] for r in models if raw is not None and r["image_auroc"] <= raw]
        summary.append(f"| {dataset} | {best['model']} | {best['image_auroc']:.3f} "
                       f"| {floor['model']} | {floor['image_auroc']:.3f} "
                       f"| {', '.join(below) or 'none'} |")
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
               f"({torch.get_num_threads()} threads)")
    settings = (f"{args.size} px" + (f", patches of {args.patch_size} px" if args.patch_size
                                     else "") + f", normalize {args.normalize}"
                + (f", augment {args.augment}" if args.augment else ""))
    text = ("\n".join(lines + summary) + "\n\nInputs: magnetic_tile gray, ball_screw RGB, "
            f"synthetic_rgbd RGB-D (centre crop 0.4); {settings}; "
            f"{args.epochs} epochs, every model with its defaults (the same on every dataset). F1 and "
            "accuracy at the checkpoint's default threshold (median + 3 * 1.4826 * MAD of "
            "held-out normal scores); ms/image: evaluation with batch 32. Floors: nearest "
            "neighbour on 32 px pixels, raw and standardised; their pixel AUROC: nearest "
            "8 px patch of any training image at the models' size (nn_floor.py).\n\n"
            f"Last run on: {machine}\n")
    (out / "results.md").write_text(text)
    return text


def benchmark_parser(doc: str) -> argparse.ArgumentParser:
    """The options every benchmark script shares: which models, datasets, where."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    return parser


def main(argv=None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--score", default=None,
                        help="score for every model instead of each model's default")
    parser.add_argument("--no-floors", action="store_true", help="skip the floor rows")
    # Settings whose effect the README reports (run into another --out to compare).
    parser.add_argument("--normalize", default="standardize", choices=["standardize", "none"])
    parser.add_argument("--augment", default="", help="e.g. brightness=0.1,shift=0.05,rotate=5")
    parser.add_argument("--hparam", type=parse_hparam, action="append", metavar="KEY=VALUE",
                        help="a model hyper-parameter other than its default (repeatable; "
                             "for measuring a setting, not for the benchmark table)")
    parser.add_argument("--patch-size", type=int, default=None,
                        help="patch mode: train on patches of this size, --size the image")
    parser.add_argument("--eval-only", action="store_true",
                        help="rescore the checkpoints of an earlier run with the (current) "
                             "default score, keeping its training times")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}

    def save(key, row):
        row["device"] = args.device
        results[key] = row
        results_file.write_text(json.dumps(results, indent=2))
        print(json.dumps(row), flush=True)

    for dataset in args.datasets.split(","):
        if not args.no_floors:
            for name, row in run_floors(dataset, args).items():
                save(f"{name}/{dataset}", row)
        for model in filter(None, args.models.split(",")):  # --models "": the floors only
            print(f"=== {model} on {dataset}", flush=True)
            save(f"{model}/{dataset}", run_model(model, dataset, args,
                                                 results.get(f"{model}/{dataset}")))
    print(write_table(results, out, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
