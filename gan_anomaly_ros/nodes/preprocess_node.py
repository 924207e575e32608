"""preprocess_node: colour + aligned depth + camera_info -> the model input of the checkpoint.

The preprocessing settings come from the checkpoint (``model`` parameter), and the conversion
is gan_anomaly_ros.preprocessing.preprocess_frame, the function training used: what was
trained is what runs.
"""

from __future__ import annotations

import time

from builtin_interfaces.msg import Time
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest

from gan_anomaly_ros.msg import ModelInput

from ..checkpoint import CheckpointError, read_preprocessing
from ..perception.preprocessing import PreprocessError, preprocess_frame
from ..ros.diagnostics import NodeHealth
from ..ros.image_conversion import ImageEncodingError, image_to_depth_m, image_to_rgb, numpy_to_image
from ..ros.node_main import StartupError, run_node
from ..ros.qos import RELIABLE_OUT, reliable_camera_qos
from ..ros.time_sync import sensor_qos, subscribe_synchronized

CAMERA_QOS = {"reliable": reliable_camera_qos, "best_effort": sensor_qos}


def wall_time_msg() -> Time:
    """System time as a message: latency is measured across processes on one machine."""
    ns = time.time_ns()
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def stamp_text(message) -> str:
    return f"{message.header.stamp.sec}.{message.header.stamp.nanosec:09d}"


class PreprocessNode(Node):
    def __init__(self):
        super().__init__("preprocess")
        model = self.declare_parameter("model", "").value
        slop = float(self.declare_parameter("slop", 0.05).value)
        queue_size = int(self.declare_parameter("queue_size", 10).value)
        # realsense-ros publishes reliable by default; best effort matches either kind of
        # publisher but loses large frames (fragmented over UDP) under load.
        reliability = self.declare_parameter("camera_qos", "reliable").value
        if reliability not in CAMERA_QOS:
            raise StartupError(f"camera_qos must be one of {sorted(CAMERA_QOS)}, got "
                               f"{reliability!r}")
        try:
            self.config = read_preprocessing(model)
        except (CheckpointError, ValueError) as exc:
            raise StartupError(f"parameter model: {exc}") from exc
        self.preprocessing_id = self.config.fingerprint()
        self.health = NodeHealth(self, "preprocess")
        self.publisher = self.create_publisher(ModelInput, "model_input", RELIABLE_OUT)
        self.sync = subscribe_synchronized(
            self, [(Image, "color/image_raw"), (Image, "depth/image_raw"),
                   (CameraInfo, "color/camera_info")],
            self.on_frame, queue_size=queue_size, slop=slop, qos=CAMERA_QOS[reliability]())
        self.get_logger().info(
            f"preprocessing {self.config.mode} {self.config.size}px (id {self.preprocessing_id}, "
            f"sync: {self.sync.implementation})")

    def on_frame(self, color: Image, depth: Image, info: CameraInfo):
        received = wall_time_msg()
        self.health.count("received")
        try:
            message = self.model_input(color, depth, info, received)
        except ImageEncodingError as exc:
            self.health.report_error("bad_encoding", f"frame {stamp_text(color)} skipped: {exc}")
            return
        except (PreprocessError, ValueError) as exc:
            self.health.report_error("bad_frame", f"frame {stamp_text(color)} skipped: {exc}")
            return
        self.publisher.publish(message)
        self.health.count("processed")

    def model_input(self, color, depth, info, received) -> ModelInput:
        if (info.width, info.height) not in ((0, 0), (color.width, color.height)):
            raise PreprocessError(f"camera_info is {info.width}x{info.height} but the colour "
                                  f"image is {color.width}x{color.height}")
        rgb = image_to_rgb(color)
        depth_m = image_to_depth_m(depth) if self.config.uses_depth else None
        array, (x, y, w, h) = preprocess_frame(rgb, depth_m, self.config)
        # Re-use the incoming colour message when it already is rgb8: no copy of the pixels.
        color_out = color if color.encoding == "rgb8" else numpy_to_image(rgb, "rgb8", color.header)
        return ModelInput(
            header=color.header,
            input=numpy_to_image(array.transpose(1, 2, 0).copy(), f"32FC{array.shape[0]}",
                                 color.header),
            color=color_out,
            crop=RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h),
            received=received, preprocessing_id=self.preprocessing_id)


def main(args=None):
    run_node(PreprocessNode, args)


if __name__ == "__main__":
    main()
