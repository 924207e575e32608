"""recorder_node: records the synchronised colour, aligned depth and camera_info as rosbag2
(MCAP, written with the `rosbags` library, readable by `ros2 bag` and by `gan-anomaly
export-bag` / `train --bag`).

Each bag carries the ``label`` parameter (good / defective / unlabeled) in its metadata;
changing the label at run time closes the bag and starts the next, so that a bag holds one
kind of part. ``only_with_part`` keeps only frames in which perception finds a part.
``split_duration_s`` / ``split_size_mb`` start a new bag after that many seconds or megabytes.
The label can also be set with the ``~/set_label`` service (gan_anomaly_ros/srv/SetLabel). Ctrl-C or SIGTERM closes the
bag: every frame received before the signal is in a readable bag. On a ROS 2 install,
`ros2 bag record` of the three camera topics records the same frames (without labels).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, Image

from gan_anomaly_ros.srv import SetLabel

from ..data.bags import LABELS
from ..perception.part_finder import find_part
from ..ros.camera_info import intrinsics_from_camera_info
from ..ros.diagnostics import NodeHealth
from ..ros.image_conversion import image_to_depth_m
from ..ros.node_main import StartupError, run_node
from ..ros.parameters import declare_dynamic, declare_read_only, on_parameter_changes
from ..ros.qos import CAMERA_QOS
from ..ros.time_sync import subscribe_synchronized

TOPICS = (("color/image_raw", "sensor_msgs/msg/Image"),
          ("depth/image_raw", "sensor_msgs/msg/Image"),
          ("color/camera_info", "sensor_msgs/msg/CameraInfo"))


class BagFile:
    """One open MCAP bag with the three camera connections."""

    def __init__(self, path: Path, topics, label: str):
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        self.path, self.frames, self.bytes, self.opened = path, 0, 0, time.monotonic()
        self.writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.set_custom_data("label", label)
        self.writer.open()
        store = get_typestore(Stores.ROS2_JAZZY)
        self.connections = [self.writer.add_connection(topic, kind, typestore=store)
                            for topic, kind in topics]

    def write(self, messages, timestamp_ns: int) -> None:
        for connection, message in zip(self.connections, messages):
            data = serialize_message(message)
            self.writer.write(connection, timestamp_ns, data)
            self.bytes += len(data)
        self.frames += 1

    def close(self) -> None:
        self.writer.close()


class RecorderNode(Node):
    def __init__(self):
        super().__init__("recorder")
        self.output_dir = Path(declare_read_only(self, "output_dir", "bags",
                                                 "folder for the bags"))
        self.label = declare_dynamic(self, "label", "unlabeled", "good | defective | "
                                     "unlabeled; a change starts a new bag")
        if self.label not in LABELS:
            raise StartupError(f"parameter label must be one of {LABELS}, got {self.label!r}")
        self.only_with_part = bool(declare_dynamic(self, "only_with_part", False,
                                                   "keep only frames with a part found"))
        self.split_duration = float(declare_dynamic(self, "split_duration_s", 0.0,
                                                    "start a new bag after this long; 0: never"))
        self.split_size = float(declare_dynamic(self, "split_size_mb", 0.0,
                                                "start a new bag at this size; 0: never"))
        slop = float(declare_read_only(self, "slop", 0.05, "s, synchronisation tolerance"))
        # Reliable: a recording must not lose frames; best_effort for a best-effort camera.
        reliability = declare_read_only(self, "camera_qos", "reliable",
                                        "reliable | best_effort")
        if reliability not in CAMERA_QOS:
            raise StartupError(f"camera_qos must be one of {sorted(CAMERA_QOS)}")
        # The topic names as remapped, so the bag holds what `ros2 bag record` would.
        self.topics = [(self.resolve_topic_name(name), kind) for name, kind in TOPICS]
        self.health = NodeHealth(self, "recorder")
        self.bag = None
        self.bag_index = 0
        on_parameter_changes(self, {"label": self.set_label,
                                    "only_with_part": self.set_only_with_part,
                                    "split_duration_s": self.set_split_duration,
                                    "split_size_mb": self.set_split_size})
        # The label as a service too, for a PLC or an operator panel: same effect as the
        # parameter (and the parameter shows the new value).
        self.create_service(SetLabel, "~/set_label", self.on_set_label)
        self.sync = subscribe_synchronized(
            self, [(Image, "color/image_raw"), (Image, "depth/image_raw"),
                   (CameraInfo, "color/camera_info")],
            self.on_frame, queue_size=10, slop=slop, qos=CAMERA_QOS[reliability]())
        self.get_logger().info(f"recording to {self.output_dir} (label {self.label})")

    def set_label(self, value) -> None:
        if value not in LABELS:
            raise ValueError(f"must be one of {LABELS}")
        self.close_bag()                     # one label per bag
        self.label = value

    def on_set_label(self, request, response):
        result = self.set_parameters([Parameter("label", value=request.label)])[0]
        response.success, response.message = result.successful, result.reason
        return response

    def set_split_size(self, value) -> None:
        if float(value) < 0:
            raise ValueError("must be >= 0")
        self.split_size = float(value)

    def set_only_with_part(self, value) -> None:
        self.only_with_part = bool(value)

    def set_split_duration(self, value) -> None:
        if float(value) < 0:
            raise ValueError("must be >= 0")
        self.split_duration = float(value)

    def open_bag(self) -> BagFile:
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        self.bag_index += 1
        # Time first: the bags of a session sort in recording order.
        path = self.output_dir / f"{stamp}_{self.bag_index:03d}_{self.label}"
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.get_logger().info(f"new bag {path}")
        return BagFile(path, self.topics, self.label)

    def close_bag(self) -> None:
        if self.bag is not None:
            self.bag.close()
            self.get_logger().info(f"closed {self.bag.path} ({self.bag.frames} frames)")
            self.bag = None

    def on_frame(self, color: Image, depth: Image, info: CameraInfo):
        self.health.count("received")
        if self.only_with_part and not self.part_present(color, depth, info):
            self.health.count("skipped_no_part")
            return
        if self.bag is not None and self.split_due(self.bag):
            self.close_bag()
        if self.bag is None:
            self.bag = self.open_bag()
        self.bag.write((color, depth, info), self.get_clock().now().nanoseconds)
        self.health.count("processed")

    def split_due(self, bag: BagFile) -> bool:
        too_long = self.split_duration > 0 and \
            time.monotonic() - bag.opened > self.split_duration
        too_big = self.split_size > 0 and bag.bytes >= self.split_size * 1e6
        return too_long or too_big

    def part_present(self, color, depth, info) -> bool:
        intrinsics = intrinsics_from_camera_info(info, color.width, color.height)
        try:
            return intrinsics is not None and find_part(image_to_depth_m(depth),
                                                        intrinsics).inspected
        except ValueError as exc:
            self.health.report_error("bad_frame", str(exc))
            return False

    def shutdown(self):
        self.close_bag()


def main(args=None):
    run_node(RecorderNode, args)


if __name__ == "__main__":
    main()
