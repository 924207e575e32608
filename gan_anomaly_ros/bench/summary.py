"""From what the bench probe saw in a measuring window to the figures of one case (ROS-free).

Latency is end to end: the receipt of the AnomalyScore minus the camera's stamp of the frame
(all processes on one machine, one clock). A frame counts as sent when the camera's
camera_info for it arrived; scored when an INSPECTED verdict for its stamp arrived.
Per-stage counts come from the nodes' /diagnostics counters (published once a second), as the
difference between the reports nearest the window's start and end; each node reports on its
own timer, so the losses between two nodes are exact to within the frames of a report period
that were in flight at the window's edges.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

INSPECTED = 1
# Diagnostics status names start with the node name (ros/diagnostics.py: "<node>: <task>").
NODES = ("replay_camera", "preprocess", "scorer")
# The stage times the nodes report (NodeHealth.observe), median of their per-second medians.
STAGE_TIMES = {"preprocess_ms": ("preprocess", "preprocess_ms_p50"),
               "score_ms": ("scorer", "score_ms_p50"),
               "images_ms": ("scorer", "images_ms_p50")}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50.0)


def node_reports(diagnostics: Dict[str, list], node: str) -> List[Tuple[int, Dict[str, str]]]:
    for name, reports in diagnostics.items():
        if name.split(":")[0] == node:
            return reports
    return []


def counter_delta(reports, key: str, start_ns: int, end_ns: int) -> Optional[int]:
    """Counter ``key`` at the report nearest ``end_ns`` minus the one nearest ``start_ns``."""
    if not reports:
        return None

    def nearest(t):
        return min(reports, key=lambda r: abs(r[0] - t))[1]

    first, last = nearest(start_ns), nearest(end_ns)
    if key not in last:
        return None
    return int(last[key]) - int(first.get(key, 0))


def stage_time(reports, key: str, start_ns: int, end_ns: int) -> float:
    values = [float(values[key]) for t, values in reports
              if start_ns <= t <= end_ns and key in values]
    return median(values)


def stage_counts(diagnostics, start_ns: int, end_ns: int) -> Dict[str, Optional[int]]:
    """What each node counted in the window and, from those, what was lost between them."""
    camera = node_reports(diagnostics, "replay_camera")
    pre = node_reports(diagnostics, "preprocess")
    scorer = node_reports(diagnostics, "scorer")

    def d(reports, key):
        return counter_delta(reports, key, start_ns, end_ns)

    counts = {"camera_published": d(camera, "processed"),
              "preprocess_colour_in": d(pre, "sync_in.color"),
              "preprocess_matched": d(pre, "received"),
              "preprocess_out": d(pre, "processed"),
              "scorer_in": d(scorer, "received"),
              "scorer_dropped": d(scorer, "dropped"),
              "scorer_scored": d(scorer, "processed"),
              "scorer_not_inspected": d(scorer, "not_inspected")}

    def lost(a, b):
        return None if counts[a] is None or counts[b] is None else max(0, counts[a] - counts[b])

    counts.update({"lost_camera_to_preprocess": lost("camera_published", "preprocess_colour_in"),
                   "lost_in_sync": lost("preprocess_colour_in", "preprocess_matched"),
                   "lost_preprocess_to_scorer": lost("preprocess_out", "scorer_in")})
    return counts


def summarize(observations, start_ns: int, end_ns: int) -> Dict[str, object]:
    """The case's figures from the probe's observations (bench_probe_node.Observations)."""
    sent = sorted(s for s in set(observations.camera_stamps) if start_ns <= s <= end_ns)
    verdicts = observations.verdicts
    answered = [s for s in sent if s in verdicts]
    scored = [s for s in answered if verdicts[s].status == INSPECTED]
    latencies = [(verdicts[s].received_ns - s) / 1e6 for s in scored]
    seconds = (end_ns - start_ns) / 1e9
    summary = {
        "window_s": round(seconds, 2),
        "frames_sent": len(sent),
        "verdicts": len(answered),
        "scored": len(scored),
        "not_inspected": len(answered) - len(scored),
        "unanswered": len(sent) - len(answered),
        "verdicts_per_s": round(len(answered) / seconds, 2) if seconds > 0 else float("nan"),
        "camera_hz": round(len(sent) / seconds, 2) if seconds > 0 else float("nan"),
        "latency_ms": {f"p{q}": round(percentile(latencies, q), 2) for q in (50, 95, 99)},
        "latency_max_ms": round(max(latencies), 2) if latencies else float("nan"),
        # From preprocess's receipt of the frame set to the verdict's publication.
        "in_pipeline_ms_p50": round(median([verdicts[s].latency_ms for s in scored]), 2),
        "stages": stage_counts(observations.diagnostics, start_ns, end_ns),
        "stage_ms_p50": {name: round(stage_time(node_reports(observations.diagnostics, node),
                                                key, start_ns, end_ns), 2)
                         for name, (node, key) in STAGE_TIMES.items()},
    }
    if observations.visual_messages:
        summary["visual_messages"] = dict(observations.visual_messages)
    return summary
