"""Several models' verdicts on the same frame -> one verdict (ROS-free; verdict_fusion_node runs
it).

Why: a colour model cannot see a dent whose colour is unchanged, and a height model
(preprocessing mode "height") cannot see a stain. A cell that runs both wants one verdict per
frame, and it must stay fail-safe:

- INSPECTED only when every model inspected the frame; the part is anomalous when any model
  says so (each model's own calibrated threshold still decides), and the fused score is the
  largest calibrated logit, log(p / (1 - p)) of the models' ``score_normalized`` p, so 0 is
  the threshold of the fused score.
- A frame a model did not inspect is not inspected: the models' common status when they agree
  (NO_PART, INVALID_INPUT, SKIPPED), SKIPPED when the others inspected it and one was busy,
  else INVALID_INPUT. Never a good part.
- A model whose verdict never came (within the node's timeout) makes the frame INVALID_INPUT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from .sorting import INSPECTED, INVALID_INPUT, SKIPPED

STATUS_NAMES = {1: "INSPECTED", 2: "NO_PART", 3: "INVALID_INPUT", 4: "SKIPPED"}
# score_normalized is a logistic of the calibrated logit, saturated at +-60 (calibration.py):
# kept off 0 and 1 so that the logit stays finite.
_EPSILON = 1e-15


@dataclass(frozen=True)
class ModelVerdict:
    """What one model said of a frame (AnomalyScore's fields that fusion reads)."""

    source: str
    status: int
    is_anomaly: bool
    score_normalized: float
    detail: str = ""


@dataclass(frozen=True)
class FusedVerdict:
    status: int
    is_anomaly: bool
    score: float              # the largest calibrated logit (NaN when not inspected)
    score_normalized: float   # the largest score_normalized (NaN when not inspected)
    detail: str               # why not inspected, per model; empty when INSPECTED
    deciding: str = ""        # the source with the largest logit (its region and pictures)


def calibrated_logit(score_normalized: float) -> float:
    p = min(max(float(score_normalized), _EPSILON), 1.0 - _EPSILON)
    return math.log(p / (1.0 - p))


def fuse(verdicts: Sequence[ModelVerdict], sources: Sequence[str]) -> FusedVerdict:
    """One verdict from the verdicts of ``sources`` on one frame (see the module docstring);
    a source without a verdict in ``verdicts`` never answered."""
    given = {v.source: v for v in verdicts}
    missing = [s for s in sources if s not in given]
    if missing:
        return FusedVerdict(INVALID_INPUT, True, math.nan, math.nan,
                            f"no verdict from {', '.join(missing)}")
    ordered = [given[s] for s in sources]
    skipped = [v for v in ordered if v.status != INSPECTED]
    if skipped:
        statuses = {v.status for v in ordered}
        if len(statuses) == 1:
            status = statuses.pop()
        elif statuses == {INSPECTED, SKIPPED}:
            status = SKIPPED
        else:
            status = INVALID_INPUT
        detail = "; ".join(f"{v.source}: {STATUS_NAMES.get(v.status, v.status)}"
                           + (f" ({v.detail})" if v.detail else "") for v in skipped)
        return FusedVerdict(status, True, math.nan, math.nan, detail)
    logits = [calibrated_logit(v.score_normalized) for v in ordered]
    best = max(range(len(ordered)), key=logits.__getitem__)
    return FusedVerdict(INSPECTED, any(v.is_anomaly for v in ordered), logits[best],
                        max(v.score_normalized for v in ordered), "", ordered[best].source)
