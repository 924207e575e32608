"""The whole graph as separate processes over DDS: replay camera -> preprocess -> scorer.

The nodes are started from gan_anomaly_ros.graph exactly as `gan-anomaly bringup` does; this
test process only listens, like a robot arm would.
"""

import math
import threading
import time

import numpy as np
import pytest

from gan_anomaly_ros.bringup import RunningGraph
from gan_anomaly_ros.checkpoint import file_id
from gan_anomaly_ros.graph import (COLOR_TOPIC, DEFECT_MASK_TOPIC, HEATMAP_TOPIC, OVERLAY_TOPIC,
                                   SCORE_TOPIC, inspection_graph)

pytestmark = pytest.mark.requires_ros

FRAMES_WANTED = 12


class Listener:
    """A plain rclpy node in this process collecting what the graph publishes."""

    def __init__(self):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import Image

        from gan_anomaly_ros.msg import AnomalyScore
        from gan_anomaly_ros.ros.qos import RELIABLE_OUT

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("graph_test_listener", context=self.context)
        self.color_stamps, self.masks, self.scores, self.images = set(), {}, [], {}
        self.diagnostics = []
        key = lambda h: (h.stamp.sec, h.stamp.nanosec)  # noqa: E731
        sub = self.node.create_subscription
        # Reliable, so this listener itself misses no frame (the replay camera publishes reliable).
        sub(Image, COLOR_TOPIC, lambda m: self.color_stamps.add(key(m.header)), RELIABLE_OUT)
        sub(Image, DEFECT_MASK_TOPIC,
            lambda m: self.masks.__setitem__(key(m.header), bool(np.frombuffer(m.data, np.uint8).any())),
            RELIABLE_OUT)
        sub(AnomalyScore, SCORE_TOPIC, self.scores.append, RELIABLE_OUT)
        for topic in (HEATMAP_TOPIC, OVERLAY_TOPIC):
            sub(Image, topic, lambda m, t=topic: self.images.setdefault(t, m), RELIABLE_OUT)
        sub(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self):
        while not self.stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self):
        self.stop.set()
        self.thread.join()
        self.node.destroy_node()
        self.context.try_shutdown()


@pytest.fixture(scope="module")
def graph_run(small_checkpoint, ros_env):
    graph = inspection_graph(camera="replay", model=str(small_checkpoint), device="cpu",
                             replay={"source": "synthetic", "rate": 4.0, "synthetic_count": 10,
                                     "synthetic_defect_ratio": 0.5})
    listener = Listener()
    running = RunningGraph(graph, env=ros_env, echo=False)
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and running.failed() is None:
            labelled = [s for s in listener.scores
                        if (s.header.stamp.sec, s.header.stamp.nanosec) in listener.masks]
            if len(labelled) >= FRAMES_WANTED and len(listener.images) == 2:
                break
            time.sleep(0.2)
        time.sleep(1.5)  # one more diagnostics period
    finally:
        codes = running.stop()
        listener.close()
    yield listener, running, codes


def test_scores_arrive_with_camera_stamps(graph_run, small_checkpoint):
    listener, running, codes = graph_run
    output = {name: "".join(lines) for name, lines in running.output.items()}
    assert len(listener.scores) >= FRAMES_WANTED, f"too few scores; node output: {output}"
    for score in listener.scores:
        stamp = (score.header.stamp.sec, score.header.stamp.nanosec)
        # The verdict carries the stamp of the camera frame that was scored.
        assert stamp in listener.color_stamps
        assert score.header.frame_id == "camera_color_optical_frame"
        assert 0.0 <= score.score_normalized <= 1.0
        assert score.is_anomaly == (score.score > score.threshold)
        assert score.model_name == "ganomaly"
        assert score.checkpoint_id == file_id(small_checkpoint)
        assert math.isnan(score.centroid.x)
        assert 0.0 < score.latency_ms < 10_000
        if score.is_anomaly:
            assert score.roi.width > 0 and score.roi.height > 0


def test_defective_frames_score_higher_on_average(graph_run):
    listener = graph_run[0]
    truth = [(listener.masks[(s.header.stamp.sec, s.header.stamp.nanosec)], s.score)
             for s in listener.scores
             if (s.header.stamp.sec, s.header.stamp.nanosec) in listener.masks]
    good = [score for defective, score in truth if not defective]
    bad = [score for defective, score in truth if defective]
    assert good and bad, f"need both kinds of frames, got {len(good)} good, {len(bad)} defective"
    assert np.mean(bad) > np.mean(good)


def test_heatmap_and_overlay_are_rgb8_frames(graph_run):
    listener = graph_run[0]
    for topic in (HEATMAP_TOPIC, OVERLAY_TOPIC):
        image = listener.images[topic]
        assert image.encoding == "rgb8"
        assert (image.width, image.height) == (640, 480)
        assert (image.header.stamp.sec, image.header.stamp.nanosec) in listener.color_stamps


def test_scorer_reports_counts_in_diagnostics(graph_run):
    listener = graph_run[0]
    statuses = [s for array in listener.diagnostics for s in array.status if "scorer" in s.name]
    assert statuses, "no diagnostics from the scorer"
    values = {kv.key: kv.value for kv in statuses[-1].values}
    assert int(values["scored"]) > 0


def test_nodes_stop_cleanly_on_sigint(graph_run):
    codes = graph_run[2]
    assert all(code == 0 for code in codes.values()), codes
