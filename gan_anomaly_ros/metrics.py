"""Detection metrics computed with numpy only (no scikit-learn needed on a robot)."""

from __future__ import annotations

from typing import Dict

import numpy as np
from scipy.stats import rankdata


def auroc(labels, scores) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count one half)."""
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, np.float64).ravel()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def threshold_metrics(labels, scores, threshold: float) -> Dict[str, float]:
    """F1, accuracy and the confusion matrix when score > threshold means anomalous."""
    labels = np.asarray(labels).astype(bool)
    predicted = np.asarray(scores) > threshold
    tp = int((predicted & labels).sum())
    fp = int((predicted & ~labels).sum())
    fn = int((~predicted & labels).sum())
    tn = int((~predicted & ~labels).sum())
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return {"f1": f1, "accuracy": (tp + tn) / max(1, len(labels)),
            "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn}}


def roc_curve(labels, scores):
    """(false positive rates, true positive rates), one point per distinct threshold."""
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, np.float64).ravel()
    order = np.argsort(-scores, kind="mergesort")
    labels, scores = labels[order], scores[order]
    # The last index of each run of equal scores: ties move the curve diagonally, once.
    last = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]
    tps = np.cumsum(labels)[last]
    fps = (last + 1) - tps
    tpr = np.r_[0.0, tps / max(1, labels.sum())]
    fpr = np.r_[0.0, fps / max(1, (~labels).sum())]
    return fpr, tpr
