"""Threshold calibration and score normalisation.

Three rules, each recorded in the checkpoint (``Calibration.rule``) and shown by ``eval``:

- Default, unsupervised (documented in the README): on held-out normal images that training
  never saw, ``threshold = median + k * sigma`` of their scores with the robust spread
  ``sigma = 1.4826 * MAD`` (median absolute deviation; equals the standard deviation for
  normally distributed scores), k = 3 by default.
- A target false-alarm rate r on those held-out normal images: the threshold is the smallest
  held-out score that leaves at most r * n of the n images above it. With n images the rate
  cannot be checked below 1 / n; the threshold is then the held-out maximum, and the rule
  says so.
- Labelled: the threshold with the best F1 on a small folder of good and defective parts,
  kept apart from the evaluation data (midway between the two scores it separates).

In every rule ``score_normalized = 1 / (1 + exp(-(score - threshold) / sigma))``, so the
threshold maps to exactly 0.5 and a typical normal image to about 0.05 at k = 3.

Why robust statistics: held-out good parts include a few odd ones (a reflection, a dust grain)
whose scores sit far out in the tail. With mean + 3 * std those few set the threshold: on the
benchmark's ball_screw GANomaly the held-out maximum alone moved it from 0.22 to 0.37 and F1 at
the threshold from 0.87 to 0.59 (no false alarms, but most defects passed). For the anomaly map, ``map_threshold``
is the 99.9th percentile of the held-out normal maps' pixels: above it a pixel is unusual.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

# Keeps a degenerate calibration (identical held-out scores) from dividing by zero.
MIN_SCALE = 1e-6
# MAD -> standard deviation for normally distributed data.
MAD_TO_SIGMA = 1.4826
RULE = "median + k * 1.4826 * MAD"
# Fewer held-out images than this: the rule says its threshold is uncertain.
FEW_IMAGES = 20


@dataclass(frozen=True)
class Calibration:
    threshold: float
    scale: float
    map_threshold: float
    n_images: int
    k_sigma: Optional[float] = 3.0   # None for the rules that do not use it
    rule: str = RULE

    def normalize(self, score: float) -> float:
        z = (float(score) - self.threshold) / self.scale
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def is_anomaly(self, score: float) -> bool:
        return float(score) > self.threshold

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        fields.setdefault("rule", "mean + k * std")  # checkpoints from before the rule was stored
        return cls(**fields)


def robust_sigma(scores: np.ndarray) -> float:
    """1.4826 * median absolute deviation from the median."""
    return MAD_TO_SIGMA * float(np.median(np.abs(scores - np.median(scores))))


def _checked(scores) -> np.ndarray:
    scores = np.asarray(scores, np.float64)
    if scores.size < 2:
        raise ValueError("calibration needs at least 2 held-out normal images")
    if not np.all(np.isfinite(scores)):
        raise ValueError("calibration scores contain NaN or infinity: the model diverged")
    return scores


def map_threshold_of(normal_maps) -> float:
    return max(float(np.quantile(np.asarray(normal_maps, np.float32), 0.999)), MIN_SCALE)


def false_alarm_threshold(scores: np.ndarray, rate: float) -> float:
    """The smallest held-out score with at most floor(rate * n) of the n scores above it."""
    ordered = np.sort(scores)
    allowed = int(np.floor(rate * len(ordered)))
    return float(ordered[len(ordered) - 1 - allowed])


def calibrate(normal_scores, normal_maps, k_sigma: float = 3.0,
              max_false_alarm_rate: float = None) -> Calibration:
    """Calibration from the scores and anomaly maps of held-out normal images: median + k
    robust sigmas, or the target false-alarm rate when one is given."""
    scores = _checked(normal_scores)
    scale = max(robust_sigma(scores), MIN_SCALE)
    if max_false_alarm_rate is None:
        threshold = float(np.median(scores)) + k_sigma * scale
        rule = f"median + {k_sigma:g} * 1.4826 * MAD of held-out normal scores"
    else:
        if not 0.0 < max_false_alarm_rate < 1.0:
            raise ValueError(f"max_false_alarm_rate must be in (0, 1), got {max_false_alarm_rate}")
        threshold = false_alarm_threshold(scores, max_false_alarm_rate)
        rule = f"false-alarm rate <= {max_false_alarm_rate:g} on held-out normal images"
        if max_false_alarm_rate * scores.size < 1:
            rule += (f" (with {scores.size} images a rate below {1 / scores.size:.3g} cannot be "
                     "checked: threshold = their highest score)")
    if scores.size < FEW_IMAGES:
        rule += f" (only {scores.size} images: an uncertain threshold)"
    return Calibration(threshold=threshold, scale=scale, map_threshold=map_threshold_of(normal_maps),
                       n_images=int(scores.size),
                       k_sigma=k_sigma if max_false_alarm_rate is None else None, rule=rule)


def f1_optimal_threshold(scores, labels) -> float:
    """The threshold (score > threshold = anomalous) with the best F1 on labelled scores,
    midway between the two neighbouring scores it separates; ties go to the higher threshold
    (fewer false alarms)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    # Flag the top i images (i = 1..n) where the score changes between i-1 and i.
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    fn = y.sum() - tp
    f1 = 2 * tp / np.maximum(1, 2 * tp + fp + fn)
    cut = np.r_[s[:-1] > s[1:], True]  # a threshold can only fall between different scores
    best = int(np.argmax(np.where(cut, f1, -1.0)))
    below = s[best + 1] if best + 1 < len(s) else s[best] - max(1e-6, abs(s[best]) * 1e-3)
    return float((s[best] + below) / 2)


def calibrate_labeled(scores, labels, normal_scores, normal_maps, source: str) -> Calibration:
    """The F1-optimal threshold on a labelled folder; the normalisation scale and the map
    threshold still come from held-out normal images."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, np.float64)
    if labels.all() or not labels.any():
        raise ValueError(f"labelled calibration needs good and defective images; {source} has "
                         f"{int((~labels).sum())} good and {int(labels.sum())} defective")
    if not np.all(np.isfinite(scores)):
        raise ValueError("calibration scores contain NaN or infinity: the model diverged")
    held_out = _checked(normal_scores)
    rule = (f"F1-optimal on labelled {source} ({int((~labels).sum())} good, "
            f"{int(labels.sum())} defective)")
    return Calibration(threshold=f1_optimal_threshold(scores, labels),
                       scale=max(robust_sigma(held_out), MIN_SCALE),
                       map_threshold=map_threshold_of(normal_maps), n_images=int(len(scores)),
                       k_sigma=None, rule=rule)
