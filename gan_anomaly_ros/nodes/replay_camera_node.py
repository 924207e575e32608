"""replay_camera_node: publishes RealSense-compatible colour, aligned depth and camera_info.

Sources: ``synthetic`` (the project's scene generator; no camera or data needed), a folder in
the MVTec AD layout, plain or RGB-D, or a rosbag2 of the camera topics (MCAP or sqlite3, ours
or `ros2 bag record`'s), played at its recorded rate. Topic names and encodings match realsense-ros 4.x with
align_depth.enable:=true (rgb8 colour, 16UC1 depth in millimetres, one stamp for all three), so
everything downstream runs the same with a real camera. The defect mask of each frame is also
published (mono8, same stamp) so the live pipeline can be evaluated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from ..data.depth import DepthFormat
from ..data.folders import DatasetError, list_split, read_depth_m, read_rgb
from ..perception.geometry import (D435_COLOR_640X480, CameraIntrinsics, d435_color_intrinsics,
                                   intrinsics_for_image)
from ..ros.diagnostics import NodeHealth
from ..ros.image_conversion import numpy_to_image
from ..ros.node_main import StartupError, run_node
from ..ros.parameters import declare_dynamic, declare_read_only, on_parameter_changes
from ..ros.qos import RELIABLE_OUT
from ..data.synthetic import DEFECT_TYPES, render_scene

# Replay seeds start far from the dataset writer's, so replayed parts are never training parts.
SYNTHETIC_SEED_BASE = 1_000_000


class ReplayFrame:
    """Pixels of one frame: rgb uint8, depth uint16 mm, mask uint8, camera intrinsics."""

    def __init__(self, rgb, depth_mm, mask, intrinsics: CameraIntrinsics, label: str):
        self.rgb, self.depth_mm, self.mask = rgb, depth_mm, mask
        self.intrinsics, self.label = intrinsics, label
        self.messages = None  # (colour, depth, camera_info, mask) messages, built on first use


def synthetic_frames(count: int, defect_ratio: float, seed: int,
                     intrinsics: CameraIntrinsics = D435_COLOR_640X480
                     ) -> List[Callable[[], ReplayFrame]]:
    """Loaders for `count` synthetic frames; every 1/defect_ratio-th one has a defect."""
    loaders = []
    n_defects = 0
    for index in range(count):
        # Evenly spread defects: frame i is defective when the running share falls behind.
        defective = defect_ratio > 0 and (n_defects + 1) <= defect_ratio * (index + 1) + 1e-9
        defect = DEFECT_TYPES[n_defects % len(DEFECT_TYPES)] if defective else None
        n_defects += int(defective)
        loaders.append(lambda s=seed + index, d=defect: _render(s, d, intrinsics))
    return loaders


def _render(seed: int, defect, intrinsics: CameraIntrinsics) -> ReplayFrame:
    frame = render_scene(SYNTHETIC_SEED_BASE + seed, defect, intrinsics)
    return ReplayFrame(frame.color, frame.depth_mm, frame.mask, frame.intrinsics, frame.label)


def is_bag(path: Path) -> bool:
    return (path / "metadata.yaml").is_file()


def bag_frames(path: Path) -> tuple:
    """(loaders, recorded rate in Hz) of a rosbag2 of the camera topics (data/bags.py). The
    frames are read at startup: a bag for replay is minutes of a line, not hours."""
    from ..data.bags import read_bag_frames

    frames = list(read_bag_frames([path]))
    if not frames:
        raise DatasetError(f"bag {path} holds no colour frame with its depth")
    stamps = np.array([f.stamp_ns for f in frames], np.float64)
    rate = float(1e9 / np.median(np.diff(stamps))) if len(frames) > 1 else 5.0
    loaders = []
    for frame in frames:
        depth_mm = np.clip(np.round(frame.depth_m * 1000.0), 0, 65535).astype(np.uint16)
        intrinsics = frame.intrinsics or intrinsics_for_image(frame.rgb.shape[1],
                                                              frame.rgb.shape[0])
        replay = ReplayFrame(frame.rgb, depth_mm, np.zeros(depth_mm.shape, np.uint8),
                             intrinsics, "unlabeled")
        loaders.append(lambda r=replay: r)
    return loaders, rate


def folder_frames(root: Path, split: str, depth_format: Optional[DepthFormat] = None
                  ) -> List[Callable[[], ReplayFrame]]:
    frames = list_split(root, split)
    info_file = root / "camera_info.json"
    intrinsics = (CameraIntrinsics.from_dict(json.loads(info_file.read_text()))
                  if info_file.exists() else None)
    return [lambda f=f: _read(f, intrinsics, depth_format) for f in frames]


def _read(frame, intrinsics, depth_format: Optional[DepthFormat] = None) -> ReplayFrame:
    rgb = read_rgb(frame.rgb_path)
    height, width = rgb.shape[:2]
    if frame.depth_path is not None:
        depth_m = read_depth_m(frame.depth_path, depth_format)
        depth_mm = np.round(np.clip(depth_m * 1000, 0, 65535)).astype(np.uint16)
    else:
        depth_mm = np.zeros((height, width), np.uint16)  # 0 = no depth, as RealSense marks it
    mask = np.zeros((height, width), np.uint8)
    if frame.mask_path is not None:
        mask = read_rgb(frame.mask_path)[..., 0]
    if intrinsics is None or intrinsics.shape != (height, width):
        intrinsics = intrinsics_for_image(width, height)
    return ReplayFrame(rgb, depth_mm, mask, intrinsics, frame.label)


def camera_info_msg(intrinsics: CameraIntrinsics, header) -> CameraInfo:
    info = CameraInfo(header=header, width=intrinsics.width, height=intrinsics.height,
                      distortion_model="plumb_bob")
    info.d = [0.0] * 5
    info.k = intrinsics.K.ravel().tolist()
    info.r = np.eye(3).ravel().tolist()
    info.p = np.hstack([intrinsics.K, np.zeros((3, 1))]).ravel().tolist()
    return info


class ReplayCameraNode(Node):
    def __init__(self):
        super().__init__("replay_camera")
        source = declare_read_only(self, "source", "synthetic",
                                   "synthetic | a dataset folder | a rosbag2 folder")
        rate = float(declare_dynamic(self, "rate", 5.0, "frames per second (run time)"))
        self.loop = bool(declare_dynamic(self, "loop", True, "start again after the last frame"))
        self.frame_id = declare_read_only(self, "frame_id", "camera_color_optical_frame",
                                          "frame_id of the published images")
        split = declare_read_only(self, "split", "test", "folder sources: the split to play")
        count = int(declare_read_only(self, "synthetic_count", 12, "synthetic frames"))
        defect_ratio = float(declare_read_only(self, "synthetic_defect_ratio", 0.5,
                                               "share of synthetic frames with a defect"))
        seed = int(declare_read_only(self, "synthetic_seed", 0, "synthetic scene seed"))
        # The RealSense colour modes a line uses: 640x480 and 848x480 (D435-like intrinsics).
        width = int(declare_read_only(self, "synthetic_width", 640, "synthetic image width"))
        height = int(declare_read_only(self, "synthetic_height", 480, "synthetic image height"))
        # Folder sources: the unit of their depth images (data/depth.py); 0 = no scale.
        depth_format = declare_read_only(self, "depth_format", "auto",
                                         "auto | millimetres | metres | scaled")
        depth_scale = float(declare_read_only(self, "depth_scale", 0.0,
                                              "metres per stored unit (format scaled)"))
        # A camera does not wait; a replay used for evaluation can wait until this many
        # subscribers are matched on every topic (the mask too: the evaluator's truth), so that
        # no frame or mask is lost.
        self.wait_for_subscribers = int(declare_read_only(
            self, "wait_for_subscribers", 0, "hold the first frame until this many subscribers "
            "listen on every topic"))
        # Bag sources play at the rate they were recorded at, unless this is false.
        recorded_rate = bool(declare_read_only(self, "recorded_rate", True,
                                               "bag sources: play at the recorded rate"))
        if rate <= 0:
            raise StartupError(f"rate must be > 0 Hz, got {rate}")
        self.cache = {}
        try:
            depth = DepthFormat(depth_format, depth_scale or None)
            path = Path(source).expanduser()
            if source == "synthetic":
                if width < 64 or height < 64:
                    raise ValueError(f"synthetic images must be at least 64x64, got "
                                     f"{width}x{height}")
                self.loaders = synthetic_frames(count, defect_ratio, seed,
                                                d435_color_intrinsics(width, height))
            elif is_bag(path):
                self.loaders, recorded = bag_frames(path)
                if recorded_rate:
                    rate = recorded
            else:
                self.loaders = folder_frames(path, split, depth)
            if self.loaders:
                self.frame(0)  # a source that cannot be read (e.g. 8-bit depth) fails here
            if source == "synthetic":
                # Rendered now, not in the timer: a camera keeps its rate from the first frame
                # (rendering takes ~0.1 s a frame, longer than a frame period).
                for index in range(len(self.loaders)):
                    self.frame(index)
        except (DatasetError, ValueError) as exc:
            raise StartupError(f"replay source {source!r}: {exc}") from exc
        if not self.loaders:
            raise StartupError(f"replay source {source!r} has no frames")
        self.index = 0
        self.health = NodeHealth(self, "replay camera")
        self.pub_color = self.create_publisher(Image, "color/image_raw", RELIABLE_OUT)
        self.pub_depth = self.create_publisher(Image, "depth/image_raw", RELIABLE_OUT)
        self.pub_info = self.create_publisher(CameraInfo, "color/camera_info", RELIABLE_OUT)
        self.pub_mask = self.create_publisher(Image, "ground_truth/defect_mask", RELIABLE_OUT)
        self.timer = self.create_timer(1.0 / rate, self.publish_next)
        on_parameter_changes(self, {"rate": self.set_rate,
                                    "loop": lambda value: setattr(self, "loop", bool(value))})
        self.get_logger().info(f"replaying {len(self.loaders)} frames from {source!r} at "
                               f"{rate:g} Hz (loop={self.loop})")

    def set_rate(self, value) -> None:
        """A new rate takes effect at the next frame: the timer is replaced."""
        if not float(value) > 0:
            raise ValueError("the rate must be > 0 Hz")
        self.destroy_timer(self.timer)
        self.timer = self.create_timer(1.0 / float(value), self.publish_next)

    def frame(self, index: int) -> ReplayFrame:
        if index not in self.cache:
            self.cache[index] = self.loaders[index]()
        return self.cache[index]

    def listeners_ready(self) -> bool:
        return all(publisher.get_subscription_count() >= self.wait_for_subscribers
                   for publisher in (self.pub_color, self.pub_depth, self.pub_info,
                                     self.pub_mask))

    def publish_next(self):
        if self.index == 0 and not self.listeners_ready():
            return
        if self.index >= len(self.loaders):
            if not self.loop:
                self.timer.cancel()
                self.get_logger().info("all frames published; idle (loop is false)")
                return
            self.index = 0
        try:
            frame = self.frame(self.index)
        except (DatasetError, OSError, ValueError) as exc:
            self.health.report_error("unreadable_frame", str(exc))
            self.index += 1
            return
        self.index += 1
        color, depth, info, mask = self.messages(frame)
        stamp = self.get_clock().now().to_msg()
        for message in (color, depth, info, mask):
            message.header.stamp = stamp
        self.pub_color.publish(color)
        self.pub_depth.publish(depth)
        self.pub_info.publish(info)
        # The mask is for evaluation only: not converted and sent when nobody listens.
        if self.pub_mask.get_subscription_count():
            self.pub_mask.publish(mask)
        self.health.count("processed")

    def messages(self, frame: ReplayFrame):
        """The frame's four messages, built once and re-stamped at each publication: a camera
        driver does not spend the CPU a benchmark measures on converting the same pixels."""
        cached = frame.messages
        if cached is None:
            header = Image().header
            header.frame_id = self.frame_id
            cached = frame.messages = (
                numpy_to_image(frame.rgb, "rgb8", header),
                numpy_to_image(frame.depth_mm, "16UC1", header),
                camera_info_msg(frame.intrinsics, header),
                numpy_to_image(frame.mask, "mono8", header))
        return cached


def main(args=None):
    run_node(ReplayCameraNode, args)


if __name__ == "__main__":
    main()
