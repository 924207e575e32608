"""Evaluating a checkpoint on a dataset's test split (image and pixel level)."""

from __future__ import annotations

from collections import defaultdict
from typing import Dict

import numpy as np

from .datasets import prepare_split
from .metrics import auroc, threshold_metrics
from .scoring import Scorer


def evaluate_folder(checkpoint, data_dir, device: str = "auto", progress: bool = True) -> Dict:
    scorer = Scorer(checkpoint, device)
    split = prepare_split(data_dir, "test", scorer.preprocessing, progress=progress)
    results = []
    for start in range(0, len(split.inputs), 32):
        results += scorer.score_batch(split.inputs[start:start + 32])
    scores = np.array([r.score for r in results])
    metrics = {"checkpoint_id": scorer.checkpoint.checkpoint_id,
               "model": scorer.model.name, "n_images": int(len(scores)),
               "image_auroc": auroc(split.labels, scores),
               **threshold_metrics(split.labels, scores, scorer.calibration.threshold)}
    if split.masks is not None:
        maps = np.stack([r.anomaly_map for r in results])
        metrics["pixel_auroc"] = auroc(split.masks.ravel(), maps.ravel())
    by_type = defaultdict(list)
    for name, score in zip(split.label_names, scores):
        by_type[name].append(float(score))
    metrics["mean_score_by_type"] = {k: float(np.mean(v)) for k, v in by_type.items()}
    good = scores[split.labels == 0]
    metrics["auroc_by_type"] = {
        k: auroc(np.r_[np.zeros(len(good)), np.ones(len(v))], np.r_[good, v])
        for k, v in by_type.items() if k != "good"}
    return metrics
