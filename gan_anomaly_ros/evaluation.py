"""Evaluating a checkpoint on a dataset's test split: metrics, ROC curve, heatmap gallery."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from .anomaly_map import colorize, display_scale
from .data.folders import PreparedSplit, prepare_split
from .metrics import auroc, roc_curve, threshold_metrics
from .perception.preprocessing import input_to_display_rgb
from .progress import track
from .scoring import ScoreResult, Scorer


def score_split(scorer: Scorer, split: PreparedSplit, batch_size: int = 32,
                progress: bool = True) -> List[ScoreResult]:
    starts = range(0, len(split.inputs), batch_size)
    if progress:
        starts = track(starts, total=len(starts), desc="scoring", unit="batch")
    results: List[ScoreResult] = []
    for start in starts:
        results += scorer.score_batch(split.inputs[start:start + batch_size])
    return results


def threshold_position(labels, scores, threshold: float) -> Dict:
    """Where the threshold sits among the test scores: the share of good and of defective
    images above it, and its rank among all scores (0 = below all, 1 = above all)."""
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores)
    share = (lambda mask: float(np.mean(scores[mask] > threshold)) if mask.any() else None)
    return {"good_flagged": share(~labels), "defective_flagged": share(labels),
            "rank_among_scores": float(np.mean(scores <= threshold)),
            "score_range": [float(scores.min()), float(scores.max())]}


def threshold_warnings(position: Dict) -> List[str]:
    warnings = []
    if position["rank_among_scores"] == 1.0:
        warnings.append("the threshold lies above every test score: nothing is flagged")
    elif position["defective_flagged"] == 0.0:
        warnings.append("the threshold flags none of the defective test images")
    if position["rank_among_scores"] == 0.0:
        warnings.append("the threshold lies below every test score: everything is flagged")
    return warnings


def compute_metrics(scorer: Scorer, split: PreparedSplit, results: List[ScoreResult]) -> Dict:
    scores = np.array([r.score for r in results])
    calibration = scorer.calibration
    position = threshold_position(split.labels, scores, calibration.threshold)
    metrics = {"checkpoint_id": scorer.checkpoint.checkpoint_id, "model": scorer.model.name,
               "score": scorer.model.score_spec.text(),
               "n_images": int(len(scores)), "threshold": calibration.threshold,
               "threshold_rule": calibration.rule,
               "threshold_from_images": calibration.n_images,
               "threshold_position": position, "warnings": threshold_warnings(position),
               "image_auroc": auroc(split.labels, scores),
               **threshold_metrics(split.labels, scores, calibration.threshold)}
    if split.masks is not None and results[0].anomaly_map.ndim == 2:  # voxel maps are 3D
        maps = np.stack([r.anomaly_map for r in results])
        metrics["pixel_auroc"] = auroc(split.masks.ravel(), maps.ravel())
    by_type = defaultdict(list)
    for name, score in zip(split.label_names, scores):
        by_type[name].append(float(score))
    good = np.array(by_type.get("good", []))
    metrics["per_type"] = {
        name: {"n": len(values), "mean_score": float(np.mean(values)),
               "detected": int(np.sum(np.array(values) > scorer.calibration.threshold)),
               **({"image_auroc": auroc(np.r_[np.zeros(len(good)), np.ones(len(values))],
                                        np.r_[good, values])} if name != "good" else {})}
        for name, values in by_type.items()}
    return metrics


def plot_roc(labels, scores, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")  # files only: works on a headless robot or server
    import matplotlib.pyplot as plt

    fpr, tpr = roc_curve(labels, scores)
    figure, axis = plt.subplots(figsize=(4.5, 4.5), dpi=110)
    axis.plot(fpr, tpr, lw=2, label=f"AUROC {auroc(labels, scores):.3f}")
    axis.plot([0, 1], [0, 1], "k--", lw=1, label="chance")
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title=title,
             xlim=(0, 1), ylim=(0, 1.01))
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def gallery_rows(split: PreparedSplit, results: List[ScoreResult], per_type: int) -> List[int]:
    """Indices to show: the highest- and lowest-scoring images of each type, in order."""
    chosen = []
    for name in dict.fromkeys(split.label_names):
        members = sorted((i for i, n in enumerate(split.label_names) if n == name),
                         key=lambda i: results[i].score)
        picks = members[-((per_type + 1) // 2):] + members[:per_type // 2]
        chosen += list(dict.fromkeys(picks))
    return chosen


GALLERY_COLUMNS = ("input", "reconstruction", "anomaly map", "ground truth")


def save_gallery(split: PreparedSplit, results: List[ScoreResult], map_threshold: float,
                 path: Path, per_type: int = 2) -> None:
    """One row per image: input | reconstruction | anomaly map | ground-truth mask."""
    from PIL import Image, ImageDraw

    rows = []
    for index in gallery_rows(split, results, per_type):
        result = results[index]
        size = result.anomaly_map.shape[0]
        blank = np.full((size, size, 3), 96, np.uint8)
        recon = (input_to_display_rgb(result.reconstruction) if result.reconstruction is not None
                 else blank)
        mask = split.masks[index] if split.masks is not None else None
        mask_tile = (np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=2)
                     if mask is not None else blank)
        tiles = [input_to_display_rgb(split.inputs[index]), recon,
                 colorize(display_scale(result.anomaly_map, map_threshold)), mask_tile]
        row = Image.fromarray(np.concatenate(tiles, axis=1)).resize((4 * 128, 128), Image.NEAREST)
        strip = Image.new("RGB", (4 * 128 + 170, 128), "white")
        strip.paste(row, (170, 0))
        draw = ImageDraw.Draw(strip)
        draw.text((6, 50), f"{split.label_names[index]}\nscore {result.score:.4g}"
                           f"\n{'ANOMALY' if result.is_anomaly else 'ok'}", fill="black")
        # A grey tile with words, never a black one: black would read as "no defect".
        if result.reconstruction is None:
            draw.text((170 + 128 + 8, 58), "no reconstruction\n(memory score)", fill="white")
        if mask is None:
            draw.text((170 + 3 * 128 + 8, 58), "no mask", fill="white")
        rows.append(strip)
    header = Image.new("RGB", (4 * 128 + 170, 18), "white")
    draw = ImageDraw.Draw(header)
    for column, title in enumerate(GALLERY_COLUMNS):  # each title over its own 128 px column
        draw.text((170 + 128 * column + 4, 3), title, fill="black")
    canvas = Image.new("RGB", (header.width, 18 + 128 * len(rows)), "white")
    canvas.paste(header, (0, 0))
    for i, row in enumerate(rows):
        canvas.paste(row, (0, 18 + 128 * i))
    canvas.save(path)


def evaluate_folder(checkpoint, data_dir, device: str = "auto", progress: bool = True,
                    out_dir: Optional[Path] = None, depth_format=None) -> Dict:
    """Metrics on <data_dir>/test; with out_dir also metrics.json, roc.png and gallery.png."""
    scorer = Scorer(checkpoint, device)
    split = prepare_split(data_dir, "test", scorer.preprocessing, progress=progress,
                          depth_format=depth_format)
    started = time.perf_counter()
    results = score_split(scorer, split, progress=progress)
    metrics = compute_metrics(scorer, split, results)
    metrics["ms_per_image"] = 1000 * (time.perf_counter() - started) / max(1, len(results))
    # Frames without a usable part were not scored: a robot would not have accepted them.
    metrics["not_inspected"] = [{"file": str(f.rgb_path), "status": status, "detail": detail}
                                for f, status, detail in (split.skipped or [])]
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        scores = [r.score for r in results]
        plot_roc(split.labels, scores, out_dir / "roc.png",
                 f"{scorer.model.name} on {Path(data_dir).name}")
        if results[0].anomaly_map.ndim == 2:  # a voxel model's maps are clouds, not images
            save_gallery(split, results, scorer.calibration.map_threshold,
                         out_dir / "gallery.png")
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
