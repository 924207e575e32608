"""verdict_fusion_node: one verdict per frame from several scorers (fusion.py).

Subscribes to ``<source>/anomaly_score`` for every name in ``sources`` (the graph remaps them
to each scorer's topic), pairs the verdicts by their camera stamp, and publishes the fused
AnomalyScore on ``anomaly_score``: INSPECTED only when every model inspected the frame,
anomalous when any model says so. A frame for which some scorer has not answered within
``timeout_s`` goes out as INVALID_INPUT (never as a good part) and is counted in diagnostics
(``incomplete``); a verdict for a frame already decided is counted (``late``) and dropped.
Pairing by stamp works because every scorer answers every frame with the stamp of the colour
image it came from, SKIPPED ones too.
"""

from __future__ import annotations

import math
import time
from typing import Dict, Tuple

from rclpy.node import Node

from gan_anomaly_ros.msg import AnomalyScore

from ..fusion import ModelVerdict, fuse
from ..ros.diagnostics import NodeHealth
from ..ros.node_main import StartupError, run_node
from ..ros.parameters import declare_read_only
from ..ros.qos import RELIABLE_OUT
from ..ros.stamps import stamp_ns

# Frames waiting for their other verdicts at most: beyond it the oldest is decided at once.
MAX_PENDING = 256
# Decided stamps remembered, to tell a late verdict from a new frame.
DECIDED_MEMORY = 1024


class VerdictFusionNode(Node):
    def __init__(self):
        super().__init__("verdict_fusion")
        self.sources = [s.strip() for s in declare_read_only(
            self, "sources", ["colour", "geometry"],
            "scorer names: verdicts are read from <name>/anomaly_score") if s.strip()]
        self.timeout_s = float(declare_read_only(
            self, "timeout_s", 2.0, "seconds to wait for every scorer's verdict on a frame"))
        if len(self.sources) < 2 or len(set(self.sources)) != len(self.sources):
            raise StartupError(f"sources must name two or more different scorers, got "
                               f"{self.sources}")
        if not self.timeout_s > 0:
            raise StartupError(f"timeout_s must be > 0, got {self.timeout_s}")
        self.health = NodeHealth(self, task="verdict fusion")
        self.health.info("sources", ", ".join(self.sources))
        # stamp -> (monotonic time of its first verdict, {source: AnomalyScore})
        self.pending: Dict[int, Tuple[float, Dict[str, AnomalyScore]]] = {}
        self.decided: Dict[int, None] = {}  # insertion-ordered set
        self.pub = self.create_publisher(AnomalyScore, "anomaly_score", RELIABLE_OUT)
        for source in self.sources:
            self.create_subscription(AnomalyScore, f"{source}/anomaly_score",
                                     lambda m, s=source: self.on_verdict(s, m), RELIABLE_OUT)
        self.create_timer(min(0.1, self.timeout_s / 4), self.flush_expired)
        self.get_logger().info(f"fusing the verdicts of {', '.join(self.sources)} "
                               f"(timeout {self.timeout_s:g} s)")

    def on_verdict(self, source: str, message: AnomalyScore):
        self.health.count("received")
        stamp = stamp_ns(message.header.stamp)
        if stamp in self.decided:
            self.health.count("late")
            return
        started, verdicts = self.pending.setdefault(stamp, (time.monotonic(), {}))
        verdicts[source] = message
        if len(verdicts) == len(self.sources):
            self.decide(stamp)
        elif len(self.pending) > MAX_PENDING:
            self.decide(next(iter(self.pending)))

    def flush_expired(self):
        now = time.monotonic()
        for stamp in [s for s, (t, _) in self.pending.items() if now - t > self.timeout_s]:
            self.decide(stamp)

    def decide(self, stamp: int):
        _, verdicts = self.pending.pop(stamp)
        self.decided[stamp] = None
        if len(self.decided) > DECIDED_MEMORY:
            del self.decided[next(iter(self.decided))]
        if len(verdicts) < len(self.sources):
            self.health.count("incomplete")
        self.pub.publish(self.fused_message(verdicts))
        self.health.count("processed")

    def fused_message(self, verdicts: Dict[str, AnomalyScore]) -> AnomalyScore:
        fused = fuse([ModelVerdict(source, m.status, m.is_anomaly, m.score_normalized,
                                   m.status_detail) for source, m in verdicts.items()],
                     self.sources)
        # The part's pose, region and header from the deciding model (else any that answered).
        base = verdicts.get(fused.deciding) or next(iter(verdicts.values()))
        return AnomalyScore(
            header=base.header, status=fused.status, status_detail=fused.detail,
            score=fused.score, score_normalized=fused.score_normalized, threshold=0.0,
            is_anomaly=fused.is_anomaly,
            model_name="+".join(f"{s}:{verdicts[s].model_name}" for s in self.sources
                                if s in verdicts),
            checkpoint_id="+".join(verdicts[s].checkpoint_id for s in self.sources
                                   if s in verdicts),
            roi=base.roi, centroid=base.centroid, part_pose=base.part_pose,
            part_size=base.part_size, valid_depth_fraction=min(
                m.valid_depth_fraction for m in verdicts.values()),
            latency_ms=max((m.latency_ms for m in verdicts.values()
                            if math.isfinite(m.latency_ms)), default=math.nan))


def main(args=None):
    run_node(VerdictFusionNode, args)


if __name__ == "__main__":
    main()
