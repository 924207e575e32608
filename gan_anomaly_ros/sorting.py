"""Deciding accept / reject / retry per part from a stream of per-frame verdicts (ROS-free; the
example sorting client node runs it).

One frame's verdict can be wrong (a glint, a hand in the way); a robot should act on a part,
not on a frame. Consecutive verdicts whose centroids lie within ``same_part_m`` belong to the
same part (without centroids, every verdict counts for one part until NO_PART). A part is
accepted only after ``accept_after`` consecutive INSPECTED good verdicts,
rejected after ``reject_after`` consecutive anomalous ones (hysteresis: a single contrary frame
restarts the count), and RETRY is returned after ``retry_after`` consecutive frames that were
not inspected (INVALID_INPUT). NO_PART ends the part: the cell is empty. A SKIPPED frame (the
pipeline was busy and took a newer one) changes nothing: it says nothing about the part.
Nothing but a run of inspected good verdicts ever accepts.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

# AnomalyScore's status values (msg/AnomalyScore.msg).
INSPECTED, NO_PART, INVALID_INPUT, SKIPPED = 1, 2, 3, 4


class Decision(enum.IntEnum):
    """SortDecision's constants."""

    ACCEPT = 1
    REJECT = 2
    RETRY = 3


@dataclass(frozen=True)
class SortingConfig:
    accept_after: int = 3
    reject_after: int = 2
    retry_after: int = 5
    same_part_m: float = 0.01

    def __post_init__(self):
        for name in ("accept_after", "reject_after", "retry_after"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.same_part_m > 0:
            raise ValueError(f"same_part_m must be > 0, got {self.same_part_m}")


@dataclass
class Verdict:
    """The fields of an AnomalyScore the decision needs."""

    status: int
    is_anomaly: bool
    centroid: Sequence[float] = (math.nan, math.nan, math.nan)


@dataclass
class Outcome:
    decision: Decision
    frames: int
    reason: str
    centroid: Optional[Sequence[float]] = None


@dataclass
class PartSorter:
    """Feed verdicts in camera order with :meth:`update`; it returns an Outcome once per part
    (then ignores further frames of the same part until it leaves or another appears)."""

    config: SortingConfig = field(default_factory=SortingConfig)
    _centroid: Optional[Sequence[float]] = None
    _good: int = 0
    _bad: int = 0
    _invalid: int = 0
    _decided: bool = False

    def reset(self) -> None:
        self._centroid, self._good, self._bad, self._invalid = None, 0, 0, 0
        self._decided = False

    def _same_part(self, centroid) -> bool:
        if self._centroid is None:
            return True
        return math.dist(self._centroid, centroid) <= self.config.same_part_m

    def update(self, verdict: Verdict) -> Optional[Outcome]:
        if verdict.status == NO_PART:
            self.reset()
            return None
        if verdict.status == SKIPPED:        # not looked at: no evidence either way
            return None
        if verdict.status != INSPECTED:      # INVALID_INPUT, or anything unknown
            self._good = self._bad = 0       # what was seen no longer counts in a row
            self._invalid += 1
            if self._invalid >= self.config.retry_after and not self._decided:
                self._decided = True
                return Outcome(Decision.RETRY, self._invalid,
                               f"{self._invalid} frames in a row not inspected",
                               self._centroid)
            return None
        centroid = tuple(float(v) for v in verdict.centroid)
        located = all(map(math.isfinite, centroid))   # NaN: the pipeline does not locate parts
        if located and not self._same_part(centroid):
            self.reset()                     # another part (or one that moved): start again
        if located:
            self._centroid = centroid
        self._invalid = 0
        if verdict.is_anomaly:
            self._bad, self._good = self._bad + 1, 0
        else:
            self._good, self._bad = self._good + 1, 0
        if self._decided:
            return None
        if self._bad >= self.config.reject_after:
            self._decided = True
            return Outcome(Decision.REJECT, self._bad,
                           f"anomalous on {self._bad} consecutive frames", centroid)
        if self._good >= self.config.accept_after:
            self._decided = True
            return Outcome(Decision.ACCEPT, self._good,
                           f"good on {self._good} consecutive frames", centroid)
        return None
