"""scorer_node: scores model inputs with a checkpoint and publishes the verdict and images.

Publishes gan_anomaly_ros/AnomalyScore on anomaly_score, and rgb8 heatmap and overlay images
(the only colour encodings rviz shows). Inference runs in a worker thread fed by a one-slot
mailbox: when the model is slower than the camera, old inputs are dropped (and counted) rather
than queued, so a verdict is never about a part that left the cell long ago.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import torch
from geometry_msgs.msg import Point
from rclpy.node import Node
from sensor_msgs.msg import Image, RegionOfInterest

from gan_anomaly_ros.msg import AnomalyScore, ModelInput

from ..anomaly_map import display_scale, map_box_to_image, overlay_image
from ..checkpoint import CheckpointError
from ..devices import DEVICE_CHOICES
from ..ros.diagnostics import NodeHealth
from ..ros.image_conversion import ImageEncodingError, image_to_numpy, image_to_rgb, numpy_to_image
from ..ros.latest_mailbox import LatestMailbox
from ..ros.node_main import StartupError, run_node
from ..ros.qos import SCORER_IN, RELIABLE_OUT
from ..scoring import InputMismatchError, Scorer

NAN_POINT = Point(x=float("nan"), y=float("nan"), z=float("nan"))


def stamp_ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class ScorerNode(Node):
    def __init__(self):
        super().__init__("scorer")
        model = self.declare_parameter("model", "").value
        device = self.declare_parameter("device", "auto").value
        self.publish_images = bool(self.declare_parameter("publish_images", True).value)
        # 0 keeps torch's default; on a small shared CPU, 1 avoids threads fighting the camera
        # driver and the other nodes for cores.
        threads = int(self.declare_parameter("torch_threads", 0).value)
        if threads > 0:
            torch.set_num_threads(threads)
        if device.split(":")[0] not in DEVICE_CHOICES:
            raise StartupError(f"parameter device must be one of {DEVICE_CHOICES}, got {device!r}")
        try:
            self.scorer = Scorer(model, device)
        except (CheckpointError, ValueError) as exc:
            raise StartupError(f"parameter model: {exc}") from exc
        checkpoint = self.scorer.checkpoint
        self.expected_id = checkpoint.preprocessing.fingerprint()
        self.health = NodeHealth(self, "scorer")
        self.pub_score = self.create_publisher(AnomalyScore, "anomaly_score", RELIABLE_OUT)
        self.pub_heatmap = self.create_publisher(Image, "anomaly_heatmap", RELIABLE_OUT)
        self.pub_overlay = self.create_publisher(Image, "anomaly_overlay", RELIABLE_OUT)
        self.mailbox = LatestMailbox()
        self.create_subscription(ModelInput, "model_input", self.on_input, SCORER_IN)
        self.context.on_shutdown(self.mailbox.close)
        self.worker = threading.Thread(target=self.work, name="scorer", daemon=True)
        self.worker.start()
        self.get_logger().info(
            f"model {checkpoint.model.name} ({checkpoint.checkpoint_id}) on {self.scorer.device}, "
            f"threshold {checkpoint.calibration.threshold:.4g}")

    def on_input(self, message: ModelInput):
        self.health.count("received")
        if self.mailbox.put(message):
            self.health.count("dropped")

    def work(self):
        while True:
            message = self.mailbox.take()
            if message is None:
                return
            try:
                self.process_input(message)
            except Exception as exc:  # noqa: BLE001 - the worker must outlive any one frame
                if not self.context.ok():
                    return  # Ctrl-C shut the context down under us: nothing left to publish
                self.health.report_error("internal", f"{type(exc).__name__}: {exc}")

    def process_input(self, message: ModelInput):
        if message.preprocessing_id != self.expected_id:
            self.health.report_error(
                "preprocessing_mismatch",
                f"input was made with preprocessing {message.preprocessing_id!r}, the "
                f"checkpoint expects {self.expected_id!r}: give preprocess_node the same "
                "model parameter")
            return
        try:
            self.score(message)
        except ImageEncodingError as exc:
            self.health.report_error("bad_encoding", str(exc))
        except (InputMismatchError, ValueError) as exc:
            self.health.report_error("bad_input", str(exc))

    def score(self, message: ModelInput):
        array = image_to_numpy(message.input)
        array = array[..., None] if array.ndim == 2 else array
        result = self.scorer.score(np.ascontiguousarray(array.transpose(2, 0, 1)))
        crop = (message.crop.x_offset, message.crop.y_offset, message.crop.width,
                message.crop.height)
        roi = (map_box_to_image(result.roi, result.anomaly_map.shape[0], crop)
               if result.roi is not None else None)
        # The verdict goes out first: robots wait for it, people for the pictures.
        self.pub_score.publish(self.score_message(message, result, roi))
        self.health.count("processed")
        if self.publish_images:
            self.publish_maps(message, result, crop, roi)

    def score_message(self, message: ModelInput, result, roi) -> AnomalyScore:
        checkpoint = self.scorer.checkpoint
        latency_ms = (time.time_ns() - stamp_ns(message.received)) / 1e6
        roi_msg = RegionOfInterest()
        if roi is not None:
            roi_msg = RegionOfInterest(x_offset=max(0, roi[0]), y_offset=max(0, roi[1]),
                                       width=roi[2], height=roi[3])
        return AnomalyScore(
            header=message.header, score=result.score, score_normalized=result.score_normalized,
            threshold=checkpoint.calibration.threshold, is_anomaly=result.is_anomaly,
            model_name=checkpoint.model.name, checkpoint_id=checkpoint.checkpoint_id,
            roi=roi_msg, centroid=NAN_POINT, latency_ms=float(latency_ms))

    def publish_maps(self, message: ModelInput, result, crop, roi):
        rgb = image_to_rgb(message.color)
        unit = display_scale(result.anomaly_map, self.scorer.calibration.map_threshold)
        heatmap, overlay = overlay_image(rgb, unit, crop, roi)
        self.pub_heatmap.publish(numpy_to_image(heatmap, "rgb8", message.header))
        self.pub_overlay.publish(numpy_to_image(overlay, "rgb8", message.header))

    def shutdown(self):
        self.mailbox.close()
        self.worker.join(timeout=5.0)


def main(args=None):
    run_node(ScorerNode, args)


if __name__ == "__main__":
    main()
