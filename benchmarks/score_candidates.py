"""Which score should each model use? Every candidate, measured on the benchmark's checkpoints.

    python benchmarks/score_candidates.py                  # all checkpoints model_zoo.py wrote
    python benchmarks/score_candidates.py --models ganomaly --datasets ball_screw

For every trained checkpoint (benchmarks/results/checkpoints/<model>_<dataset>.safetensors) it
scores the test split with each candidate score head, without retraining:

- native: the paper's score;
- residual:reduce=max|mean|top1|top10: the model's own (smoothed residual) map, reduced;
- memory:network=N,layer=L,reduce=...: nearest-neighbour distances of the model's own feature
  maps (every network it has, the three coarsest layers) to those of the training images;
- combined(local + global): a local memory (layer -2, top1) and a global one (layer -1, mean),
  each in held-out sigmas, the larger counts: every pair of the model's networks.

A memory is fitted on the training part of train/good only; the threshold (for F1) comes from
the held-out part with the default rule, as training does. It prints, and writes to
<out>/score_candidates.{json,md}, every candidate's image AUROC, pixel AUROC and F1, and per
model the candidate with the best mean image AUROC over the datasets: the evidence for each
model's ``default_score``.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from model_zoo import benchmark_parser, dataset_dir  # noqa: E402

from gan_anomaly_ros.calibration import calibrate  # noqa: E402
from gan_anomaly_ros.checkpoint import load_checkpoint  # noqa: E402
from gan_anomaly_ros.data.folders import prepare_split  # noqa: E402
from gan_anomaly_ros.metrics import auroc, threshold_metrics  # noqa: E402
from gan_anomaly_ros.models import MODELS  # noqa: E402
from gan_anomaly_ros.models.score_heads import REDUCTIONS, reduce_maps  # noqa: E402
from gan_anomaly_ros.training import predict_arrays  # noqa: E402
from gan_anomaly_ros.training.calibrate import training_split  # noqa: E402

LAYERS = (-1, -2, -3)


def measure(test_scores, test_maps, held_scores, held_maps, split) -> dict:
    calibration = calibrate(held_scores, held_maps)
    row = {"image_auroc": auroc(split.labels, test_scores),
           "f1": threshold_metrics(split.labels, test_scores, calibration.threshold)["f1"]}
    if split.masks is not None and test_maps is not None:
        row["pixel_auroc"] = auroc(split.masks.ravel(), test_maps.ravel())
    return row


def reductions(prefix: str, test_maps, held_maps, split) -> dict:
    rows = {}
    for how in REDUCTIONS:
        test = reduce_maps(torch.from_numpy(test_maps), how).numpy()
        held = reduce_maps(torch.from_numpy(held_maps), how).numpy()
        rows[f"{prefix}reduce={how}"] = measure(test, test_maps, held, held_maps, split)
    return rows


def combined_specs(model) -> list:
    networks = list(model.feature_pyramids())
    return [f"combined(memory:network={local},layer=-2,reduce=top1 + "
            f"memory:network={whole},layer=-1,reduce=mean)"
            for local in networks for whole in networks]


def candidates_for(checkpoint_path: Path, data: Path, device, kinds, specs=()) -> dict:
    checkpoint = load_checkpoint(checkpoint_path, device=device)
    model = checkpoint.model
    normal, train_idx, hold_idx = training_split(checkpoint, data, progress=False)
    split = prepare_split(data, "test", checkpoint.preprocessing, progress=False)
    held = normal[hold_idx]
    training_images = torch.from_numpy(normal[train_idx])
    rows = {}
    chosen = list(specs) + (combined_specs(model) if "combined" in kinds else [])
    if chosen:
        for spec in chosen:
            model.set_score(spec)
            model.fit_score(training_images, reference=torch.from_numpy(held))
            test_scores, test_maps = predict_arrays(model, split.inputs, device)
            held_scores, held_maps = predict_arrays(model, held, device)
            rows[model.score_spec.text()] = measure(test_scores, test_maps, held_scores,
                                                    held_maps, split)
    if "single" not in kinds:
        return rows
    model.set_score("native")
    test_scores, test_maps = predict_arrays(model, split.inputs, device)
    held_scores, held_maps = predict_arrays(model, held, device)
    rows["native"] = measure(test_scores, test_maps, held_scores, held_maps, split)
    rows.update(reductions("residual:", test_maps, held_maps, split))
    for network in model.feature_pyramids():
        probe = torch.zeros(1, model.channels, model.size, model.size, device=device)
        depth = len(model.feature_pyramids()[network](probe))
        for layer in LAYERS:
            if -layer > depth:
                continue
            model.set_score(f"memory:network={network},layer={layer}")
            model.fit_score(training_images)
            _, test_maps = predict_arrays(model, split.inputs, device)
            _, held_maps = predict_arrays(model, held, device)
            rows.update(reductions(f"memory:network={network},layer={layer},", test_maps,
                                   held_maps, split))
    return rows


def summarise(results: dict) -> str:
    lines = ["| model | dataset | candidate | image AUROC | pixel AUROC | F1 |",
             "|---|---|---|---|---|---|"]
    best_lines = ["", "| model | best candidate (mean image AUROC over datasets) | mean image "
                      "AUROC | mean pixel AUROC | mean F1 | native mean image AUROC |",
                  "|---|---|---|---|---|---|"]
    by_model = defaultdict(dict)
    for key, rows in sorted(results.items()):
        model, dataset = key.split("/")
        by_model[model][dataset] = rows
        top = sorted(rows.items(), key=lambda kv: -kv[1]["image_auroc"])
        for name, row in top:
            pixel = f"{row['pixel_auroc']:.3f}" if "pixel_auroc" in row else "-"
            lines.append(f"| {model} | {dataset} | {name} | {row['image_auroc']:.3f} | {pixel} "
                         f"| {row['f1']:.3f} |")
    for model, datasets in by_model.items():
        names = set.intersection(*(set(rows) for rows in datasets.values()))

        def mean(name, key):
            values = [rows[name].get(key) for rows in datasets.values() if name in rows]
            values = [v for v in values if v is not None]
            return float(np.mean(values)) if values else float("nan")
        best = max(names, key=lambda name: mean(name, "image_auroc"))
        best_lines.append(f"| {model} | {best} ({len(datasets)} datasets) "
                          f"| {mean(best, 'image_auroc'):.3f} | {mean(best, 'pixel_auroc'):.3f} "
                          f"| {mean(best, 'f1'):.3f} | {mean('native', 'image_auroc'):.3f} |")
    return "\n".join(default_lines(by_model) + [""] + best_lines[1:] + [""] + lines) + "\n"


def default_lines(by_model) -> list:
    """Each model's default score next to its paper's (native) one, per dataset."""
    datasets = sorted({d for rows in by_model.values() for d in rows})
    lines = ["| model | score | " + " | ".join(datasets) + " | mean |",
             "|---|---|" + "---|" * (len(datasets) + 1)]
    for model, rows in by_model.items():
        default = MODELS[model].default_score if model in MODELS else None
        for label, name in (("default: " + str(default), default), ("native", "native")):
            values = [rows.get(d, {}).get(name, {}).get("image_auroc") for d in datasets]
            known = [v for v in values if v is not None]
            cells = " | ".join(f"{v:.3f}" if v is not None else "-" for v in values)
            mean = f"{np.mean(known):.3f}" if known else "-"
            lines.append(f"| {model} | {label} | {cells} | {mean} |")
    return lines


def main(argv=None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--kinds", default="single,combined",
                        help="single (native, residual, memory) and/or combined; results are "
                             "merged into earlier ones")
    parser.add_argument("--spec", action="append", default=[],
                        help="also measure this score spec (repeatable), e.g. a combination")
    parser.add_argument("--results", default="score_candidates",
                        help="name of the results files in --out (.json, .md)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    results_file = out / f"{args.results}.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    device = torch.device(args.device)
    for model in args.models.split(","):
        for dataset in args.datasets.split(","):
            checkpoint = out / "checkpoints" / f"{model}_{dataset}.safetensors"
            if not checkpoint.exists():
                print(f"skip {model}/{dataset}: no checkpoint {checkpoint}", flush=True)
                continue
            started = time.perf_counter()
            found = candidates_for(checkpoint, dataset_dir(dataset, args), device,
                                   args.kinds.split(","), args.spec)
            results[f"{model}/{dataset}"] = {**results.get(f"{model}/{dataset}", {}), **found}
            results_file.write_text(json.dumps(results, indent=2))
            print(f"{model}/{dataset}: {time.perf_counter() - started:.0f} s", flush=True)
    text = summarise(results)
    (out / f"{args.results}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
