"""bench_probe_node: what `gan-anomaly bench` observes of a running graph, from outside it.

It listens as a robot would: the camera's camera_info (one small message per frame, with the
frame's stamp: which frames the camera sent), every AnomalyScore (receipt time minus the
camera stamp is the end-to-end latency), the nodes' /diagnostics (their counters and stage
times) and, for the "3d" bench graph, the visual outputs rviz would take. It runs inside the
bench process (bench/run.py spins it in a thread); it adds no topic of its own.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Tuple

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from visualization_msgs.msg import MarkerArray

from gan_anomaly_ros.msg import AnomalyScore

from ..graph import (ANOMALY_CLOUD_TOPIC, CAMERA_INFO_TOPIC, HEATMAP_TOPIC, MARKERS_TOPIC,
                     OVERLAY_TOPIC, SCORE_TOPIC)
from ..ros.qos import RELIABLE_OUT

# The outputs rviz shows (config/inspect.rviz): subscribed in the "3d" bench graph.
VISUAL_TOPICS = ((HEATMAP_TOPIC, Image), (OVERLAY_TOPIC, Image),
                 (ANOMALY_CLOUD_TOPIC, PointCloud2), (MARKERS_TOPIC, MarkerArray))


def stamp_ns(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


@dataclass
class Verdict:
    received_ns: int
    status: int
    latency_ms: float   # the scorer's own figure: from preprocess receipt to publication


@dataclass
class Observations:
    """Everything seen since the last reset (bench/run.py reads a copy)."""

    camera_stamps: List[int] = field(default_factory=list)
    verdicts: Dict[int, Verdict] = field(default_factory=dict)
    # "<node>: <task>" -> [(receipt ns, {key: value})], one entry a second per node
    diagnostics: Dict[str, List[Tuple[int, Dict[str, str]]]] = field(default_factory=dict)
    visual_messages: Dict[str, int] = field(default_factory=dict)


class BenchProbeNode(Node):
    def __init__(self, visual_topics: Iterable[Tuple[str, type]] = (), name="bench_probe"):
        super().__init__(name)
        self._lock = threading.Lock()
        self._seen = Observations()
        self.create_subscription(CameraInfo, CAMERA_INFO_TOPIC, self.on_camera_info,
                                 RELIABLE_OUT)
        self.create_subscription(AnomalyScore, SCORE_TOPIC, self.on_score, RELIABLE_OUT)
        self.create_subscription(DiagnosticArray, "/diagnostics", self.on_diagnostics, 50)
        for topic, kind in visual_topics:
            self.create_subscription(kind, topic, lambda _m, t=topic: self.on_visual(t),
                                     RELIABLE_OUT)

    def on_camera_info(self, message: CameraInfo) -> None:
        with self._lock:
            self._seen.camera_stamps.append(stamp_ns(message.header))

    def on_score(self, message: AnomalyScore) -> None:
        received = time.time_ns()  # first thing: the receipt time is the measurement
        with self._lock:
            self._seen.verdicts[stamp_ns(message.header)] = Verdict(
                received, int(message.status), float(message.latency_ms))

    def on_diagnostics(self, message: DiagnosticArray) -> None:
        received = time.time_ns()
        with self._lock:
            for status in message.status:
                values = {kv.key: kv.value for kv in status.values}
                self._seen.diagnostics.setdefault(status.name, []).append((received, values))

    def on_visual(self, topic: str) -> None:
        with self._lock:
            self._seen.visual_messages[topic] = self._seen.visual_messages.get(topic, 0) + 1

    def reset(self) -> None:
        with self._lock:
            self._seen = Observations()

    def observations(self) -> Observations:
        with self._lock:
            seen = self._seen
            return Observations(list(seen.camera_stamps), dict(seen.verdicts),
                                {k: list(v) for k, v in seen.diagnostics.items()},
                                dict(seen.visual_messages))
