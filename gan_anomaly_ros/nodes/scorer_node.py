"""scorer_node: scores model inputs with a checkpoint and publishes the verdict and images.

Publishes gan_anomaly_ros/AnomalyScore on anomaly_score for every ModelInput: inspected ones
scored, the others (no part, unusable frame) passed on with their status and is_anomaly true,
so no part that was not inspected is ever reported good. Also rgb8 heatmap and overlay images
(the only colour encodings rviz shows), the part cloud with a per-point ``anomaly`` field
(anomaly_cloud) and rviz markers (anomaly_markers: the part box coloured by verdict, the
anomalous region). Inference runs in a worker thread fed by a one-slot
mailbox: when the model is slower than the camera, old inputs are dropped (counted, and
answered with a SKIPPED verdict) rather than queued, so a verdict is never about a part that
left the cell long ago, and no input goes unanswered. ``input_queue``
> 1 keeps that many instead (replays, evaluations: every input of a burst is scored).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import replace

import numpy as np
import torch
from rclpy.node import Node
from sensor_msgs.msg import Image, PointCloud2, RegionOfInterest
from visualization_msgs.msg import MarkerArray

from gan_anomaly_ros.msg import AnomalyScore, ModelInput

from ..anomaly_map import display_scale, map_box_to_image, overlay_image, strongest_region
from ..checkpoint import CheckpointError
from ..devices import DEVICE_CHOICES
from ..perception.part_finder import Status
from ..perception.preprocessing import MAP_MODES
from ..ros.part_messages import (NAN_POINT, anomaly_cloud, part_map_on_image, part_markers,
                                 voxel_anomaly_cloud, voxel_grid_array)
from ..ros.diagnostics import NodeHealth
from ..ros.image_conversion import ImageEncodingError, image_to_numpy, image_to_rgb, numpy_to_image
from ..ros.latest_mailbox import LatestMailbox
from ..ros.node_main import StartupError, run_node
from ..ros.parameters import declare_dynamic, declare_model, declare_read_only, on_parameter_changes
from ..ros.qos import SCORER_IN, RELIABLE_OUT
from ..ros.stamps import stamp_ns
from ..export import ExportError
from ..scoring import RUNTIMES, InputMismatchError, Scorer

NAN = float("nan")


class ScorerNode(Node):
    def __init__(self, subscribe: bool = True):
        """``subscribe`` False: inputs come through on_input from a preprocess node in this
        process (nodes/inspection_composed.py), not from the model_input topic."""
        super().__init__("scorer")
        model = declare_model(self)
        device = declare_read_only(self, "device", "auto", "auto | cpu | cuda[:N]")
        runtime = declare_read_only(self, "runtime", "eager", " | ".join(RUNTIMES))
        exported = declare_read_only(self, "exported_model", "", "the file `gan-anomaly "
                                     "export` wrote, for runtime torchscript or onnxruntime")
        self.publish_images = bool(declare_dynamic(
            self, "publish_images", True, "heatmap, overlay, anomaly cloud and markers"))
        # 0 keeps torch's default; on a small shared CPU, 1 avoids threads fighting the camera
        # driver and the other nodes for cores.
        threads = int(declare_read_only(self, "torch_threads", 0, "torch CPU threads, 0: "
                                        "torch's default"))
        if threads > 0:
            torch.set_num_threads(threads)
        if device.split(":")[0] not in DEVICE_CHOICES:
            raise StartupError(f"parameter device must be one of {DEVICE_CHOICES}, got {device!r}")
        if runtime not in RUNTIMES or (runtime != "eager" and not exported):
            raise StartupError(f"parameter runtime must be one of {RUNTIMES}, and the exported "
                               f"ones need exported_model:=FILE; got runtime {runtime!r}, "
                               f"exported_model {exported!r}")
        autocast = bool(declare_read_only(
            self, "cuda_autocast", False, "eager runtime on CUDA: half-precision matrix "
            "products (faster; check the scores with gan-anomaly eval first)"))
        try:
            self.scorer = Scorer(model, device, runtime, exported or None, autocast)
        except ExportError as exc:
            raise StartupError(f"parameter exported_model: {exc}") from exc
        except (CheckpointError, ValueError) as exc:
            raise StartupError(f"parameter model: {exc}") from exc
        try:
            warm_up_s = self.scorer.warm_up()
        except Exception as exc:  # noqa: BLE001 - any failure here means no frame would score
            raise StartupError(f"the model fails on a blank input at start ({runtime} on "
                               f"{self.scorer.device}): {type(exc).__name__}: {exc}") from exc
        checkpoint = self.scorer.checkpoint
        # The threshold in use: the checkpoint's calibration unless set (params file, launch
        # argument threshold:=, or `ros2 param set /scorer threshold X` at run time).
        threshold = float(declare_dynamic(
            self, "threshold", float(checkpoint.calibration.threshold),
            "decision threshold in score units (default: the checkpoint's calibration)"))
        self.set_threshold(threshold)
        on_parameter_changes(self, {"threshold": self.set_threshold,
                                    "publish_images": self.set_publish_images})
        self.expected_id = checkpoint.preprocessing.fingerprint()
        stale_after = float(declare_read_only(
            self, "stale_after_s", 2.0, "diagnostics WARN after this long without input; 0: off"))
        self.health = NodeHealth(self, "scorer", stale_after=stale_after)
        self.health.info("model", f"{checkpoint.model.name} ({checkpoint.checkpoint_id})")
        self.health.info("device", str(self.scorer.device))
        self.health.info("runtime", self.scorer.runtime.description)
        self.health.info("warm_up_s", f"{warm_up_s:.2f}")
        self.pub_score = self.create_publisher(AnomalyScore, "anomaly_score", RELIABLE_OUT)
        self.health.gauge("anomaly_score_subscribers", self.pub_score.get_subscription_count)
        self.pub_heatmap = self.create_publisher(Image, "anomaly_heatmap", RELIABLE_OUT)
        self.pub_overlay = self.create_publisher(Image, "anomaly_overlay", RELIABLE_OUT)
        self.pub_cloud = self.create_publisher(PointCloud2, "anomaly_cloud", RELIABLE_OUT)
        self.pub_markers = self.create_publisher(MarkerArray, "anomaly_markers", RELIABLE_OUT)
        input_queue = int(declare_read_only(
            self, "input_queue", 1, "inputs kept while the model is busy: 1 only the newest "
            "(a live line); more: every input of a burst, oldest first (replays, evaluation)"))
        if input_queue < 1:
            raise StartupError(f"input_queue must be >= 1, got {input_queue}")
        self.mailbox = LatestMailbox(input_queue)
        if subscribe:
            self.create_subscription(ModelInput, "model_input", self.on_input, SCORER_IN)
        self.context.on_shutdown(self.mailbox.close)
        self.worker = threading.Thread(target=self.work, name="scorer", daemon=True)
        self.worker.start()
        self.get_logger().info(
            f"model {checkpoint.model.name} ({checkpoint.checkpoint_id}) on {self.scorer.device}, "
            f"threshold {self.scorer.calibration.threshold:.4g}")

    def set_threshold(self, value) -> None:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"the threshold must be a finite number, got {value}")
        # Scorer.calibration is read once per frame: the next frame uses the new threshold.
        self.scorer.calibration = replace(self.scorer.checkpoint.calibration, threshold=value)

    def set_publish_images(self, value) -> None:
        self.publish_images = bool(value)

    def on_input(self, message: ModelInput):
        self.health.count("received")
        dropped = self.mailbox.put(message)
        if dropped is not None:
            self.health.count("dropped")
            self.pass_on(dropped, Status.SKIPPED, "skipped: the scorer was busy and took a "
                         "newer input")

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
                # Still a verdict: the robot must not wait for, or accept, this frame.
                self.reject(message, "internal", f"{type(exc).__name__}: {exc}")

    def process_input(self, message: ModelInput):
        if message.preprocessing_id != self.expected_id:
            self.reject(message, "preprocessing_mismatch",
                        f"input was made with preprocessing {message.preprocessing_id!r}, the "
                        f"checkpoint expects {self.expected_id!r}: give preprocess_node the same "
                        "model parameter")
            return
        if message.status != Status.INSPECTED:
            self.pass_on(message, Status(message.status) if message.status in
                         Status._value2member_map_ else Status.INVALID_INPUT,
                         message.status_detail or f"unknown status {message.status}")
            return
        try:
            self.score(message)
        except ImageEncodingError as exc:
            self.reject(message, "bad_encoding", str(exc))
        except (InputMismatchError, ValueError) as exc:
            self.reject(message, "bad_input", str(exc))

    def reject(self, message: ModelInput, kind: str, detail: str):
        """An input the scorer cannot use: counted, logged (rate-limited) and answered with an
        INVALID_INPUT verdict, so the robot is not left waiting for this frame."""
        self.health.report_error(kind, detail)
        self.pass_on(message, Status.INVALID_INPUT, f"{kind}: {detail}")

    def pass_on(self, message: ModelInput, status: Status, detail: str):
        """The verdict for a frame that was not scored: never a good part."""
        checkpoint = self.scorer.checkpoint
        verdict = AnomalyScore(
            header=message.header, status=int(status), status_detail=detail, score=NAN,
            score_normalized=NAN, threshold=self.scorer.calibration.threshold, is_anomaly=True,
            model_name=checkpoint.model.name, checkpoint_id=checkpoint.checkpoint_id,
            centroid=NAN_POINT, latency_ms=self.latency_ms(message))
        if status is Status.NO_PART:  # the plane was seen: nothing to pick
            verdict.valid_depth_fraction = message.valid_depth_fraction
        self.pub_score.publish(verdict)
        self.health.count("not_inspected")
        if self.publish_images and self.pub_markers.get_subscription_count():
            self.pub_markers.publish(part_markers(message.header, verdict))

    def model_array(self, message: ModelInput) -> np.ndarray:
        """The raw crop, C x S x S (the scorer normalises it), or 1 x R x R x R (voxels)."""
        if self.scorer.preprocessing.mode == "voxel":
            return voxel_grid_array(message.voxels)
        array = image_to_numpy(message.input)
        array = array[..., None] if array.ndim == 2 else array
        return np.ascontiguousarray(array.transpose(2, 0, 1))

    def score(self, message: ModelInput):
        started = time.perf_counter()
        result = self.scorer.score_raw(self.model_array(message))
        self.health.observe("score_ms", 1000 * (time.perf_counter() - started))
        crop = (message.crop.x_offset, message.crop.y_offset, message.crop.width,
                message.crop.height)
        anomaly_map, roi = self.map_on_image(message, result, crop)
        roi = map_box_to_image(roi, anomaly_map.shape[0], crop) if roi is not None else None
        # The verdict goes out first: robots wait for it, people for the pictures.
        verdict = self.score_message(message, result, roi)
        self.pub_score.publish(verdict)
        self.health.count("processed")
        # End to end: from the camera's stamp (not our receipt) to the verdict going out.
        self.health.observe("latency_from_camera_ms",
                            (time.time_ns() - stamp_ns(message.header.stamp)) / 1e6)
        self.health.observe("latency_from_receipt_ms", verdict.latency_ms)
        if self.publish_images and self.anyone_watches():
            started = time.perf_counter()
            try:
                self.publish_maps(message, verdict, anomaly_map, crop, roi)
            except Exception as exc:  # noqa: BLE001 - the verdict is out; pictures are extra
                self.health.report_error("images", f"{type(exc).__name__}: {exc}")
            self.health.observe("images_ms", 1000 * (time.perf_counter() - started))

    def map_on_image(self, message: ModelInput, result, crop) -> tuple:
        """(anomaly map over the image crop, its strongest region in map pixels). A height or
        part-colour model's map lies in the part's own frame: put on the crop through the
        part's points."""
        if self.scorer.preprocessing.mode not in MAP_MODES:
            return result.anomaly_map, result.roi
        if not result.is_anomaly and not (self.publish_images and self.anyone_watches()):
            return result.anomaly_map, None  # no region to report, no picture to draw
        anomaly_map = part_map_on_image(message, result.anomaly_map, crop,
                                        self.scorer.preprocessing.map_projection)
        roi = (strongest_region(anomaly_map, self.scorer.calibration.map_threshold)
               if result.is_anomaly else None)
        return anomaly_map, roi

    @staticmethod
    def latency_ms(message: ModelInput) -> float:
        return float((time.time_ns() - stamp_ns(message.received)) / 1e6)

    def score_message(self, message: ModelInput, result, roi) -> AnomalyScore:
        checkpoint = self.scorer.checkpoint
        roi_msg = RegionOfInterest()
        if roi is not None:
            roi_msg = RegionOfInterest(x_offset=max(0, roi[0]), y_offset=max(0, roi[1]),
                                       width=roi[2], height=roi[3])
        return AnomalyScore(
            header=message.header, status=AnomalyScore.INSPECTED, score=result.score,
            score_normalized=result.score_normalized,
            threshold=self.scorer.calibration.threshold, is_anomaly=result.is_anomaly,
            model_name=checkpoint.model.name, checkpoint_id=checkpoint.checkpoint_id,
            roi=roi_msg, centroid=message.centroid, part_pose=message.part_pose,
            part_size=message.part_size, valid_depth_fraction=message.valid_depth_fraction,
            latency_ms=self.latency_ms(message))

    def anyone_watches(self) -> bool:
        """The pictures cost more than the verdict (a full-size overlay, a cloud): made only
        when rviz or a recorder subscribes to one of them."""
        return any(publisher.get_subscription_count() for publisher in
                   (self.pub_heatmap, self.pub_overlay, self.pub_cloud, self.pub_markers))

    def publish_maps(self, message: ModelInput, verdict: AnomalyScore, anomaly_map, crop, roi):
        unit = display_scale(anomaly_map, self.scorer.calibration.map_threshold)
        if unit.ndim == 3:  # a voxel model: its map shows on the part's cloud, not an image
            cloud = None
            if message.part_cloud.width > 0:
                cloud_message, cloud = voxel_anomaly_cloud(message.header, message.part_cloud,
                                                           message.voxels, unit)
                self.pub_cloud.publish(cloud_message)
            self.pub_markers.publish(part_markers(message.header, verdict, cloud))
            return
        rgb = image_to_rgb(message.color)
        heatmap, overlay = overlay_image(rgb, unit, crop, roi)
        self.pub_heatmap.publish(numpy_to_image(heatmap, "rgb8", message.header))
        self.pub_overlay.publish(numpy_to_image(overlay, "rgb8", message.header))
        cloud = None
        if message.part_cloud.width > 0:
            cloud_message, cloud = anomaly_cloud(message.header, message.part_cloud, unit, crop)
            self.pub_cloud.publish(cloud_message)
        self.pub_markers.publish(part_markers(message.header, verdict, cloud))

    def shutdown(self):
        self.mailbox.close()
        self.worker.join(timeout=5.0)


def main(args=None):
    run_node(ScorerNode, args)


if __name__ == "__main__":
    main()
