"""preprocess_node: colour + aligned depth + camera_info -> the part and the model input.

Finds the part in the depth (perception/part_finder.py: plane, largest region above it, pose
and box), cuts the model input the checkpoint was trained on (perception/frame_input.py, the
function training used: what was trained is what runs) and publishes ModelInput with the
part's status, pose and point cloud. Every frame set gets a ModelInput: frames without a part
or with unusable depth go on as NO_PART / INVALID_INPUT, so the scorer can say so.
"""

from __future__ import annotations

import time
from functools import partial

from builtin_interfaces.msg import Time
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest

from gan_anomaly_ros.msg import ModelInput

from ..checkpoint import CheckpointError, read_preprocessing
from ..perception.frame_input import FrameInput, prepare_frame
from ..perception.part_finder import FrameScratch, PartFinderConfig, PlaneHint, Status
from ..ros.camera_info import intrinsics_from_camera_info
from ..ros.part_messages import part_cloud, part_fields, voxel_grid_message
from ..ros.diagnostics import NodeHealth
from ..ros.image_conversion import ImageEncodingError, image_to_depth_m, image_to_rgb, numpy_to_image
from ..ros.node_main import StartupError, run_node
from ..ros.parameters import declare_dynamic, declare_model, declare_read_only, on_parameter_changes
from ..ros.qos import CAMERA_QOS, RELIABLE_OUT, has_best_effort_publisher
from ..ros.stamps import stamp_ns
from ..ros.time_sync import subscribe_synchronized

# Diagnostics counters of what reaches the synchroniser; "received" counts the matched sets,
# so sync_in.color - received is the colour frames it could not match (or still holds).
SYNC_INPUTS = ("sync_in.color", "sync_in.depth", "sync_in.camera_info")
_DEFAULTS = PartFinderConfig()
# Part finder parameters: name -> (default, description); all can change at run time.
FINDER_PARAMETERS = {
    "workspace_min": ([-10.0, -10.0, 0.0], "workspace box corner [x, y, z], camera optical "
                      "frame, metres"),
    "workspace_max": ([10.0, 10.0, 10.0], "opposite corner of the workspace box"),
    "min_depth_m": (_DEFAULTS.min_depth_m, "depth below this is no measurement"),
    "max_depth_m": (_DEFAULTS.max_depth_m, "depth beyond this is no measurement"),
    "plane_distance_m": (_DEFAULTS.plane_distance_m, "RANSAC inlier band of the plane"),
    "min_height_m": (_DEFAULTS.min_height_m, "above the plane: part, not table"),
    "min_part_area": (_DEFAULTS.min_part_area, "share of the image; smaller regions: NO_PART"),
    "min_valid_fraction": (_DEFAULTS.min_valid_fraction, "share of the part's outline with "
                           "valid depth, else INVALID_INPUT"),
}


def finder_config(values) -> PartFinderConfig:
    """Parameter values -> PartFinderConfig; ValueError says what is wrong."""
    values = dict(values)
    for name in ("workspace_min", "workspace_max"):
        box = tuple(float(v) for v in values[name])
        if len(box) != 3:
            raise ValueError(f"{name} must be [x, y, z] metres in the camera frame, got {box}")
        values[name] = box
    return PartFinderConfig(**{k: v if isinstance(v, tuple) else float(v)
                               for k, v in values.items()})


def wall_time_msg() -> Time:
    """System time as a message: latency is measured across processes on one machine."""
    ns = time.time_ns()
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def stamp_text(message) -> str:
    return f"{message.header.stamp.sec}.{message.header.stamp.nanosec:09d}"


class PreprocessNode(Node):
    def __init__(self):
        super().__init__("preprocess")
        model = declare_model(self)
        slop = float(declare_read_only(self, "slop", 0.05, "s, colour/depth/camera_info "
                                       "synchronisation tolerance"))
        queue_size = int(declare_read_only(self, "queue_size", 10, "synchroniser queue"))
        # auto: reliable, switching to best effort when the camera publishes best effort
        # (ros/qos.py says why).
        reliability = declare_read_only(self, "camera_qos", "auto",
                                        "auto | reliable | best_effort")
        # While the node is busy, frames wait in this queue per camera topic: 1 always takes
        # the newest frame (bounded latency; frames are dropped when the machine is too slow,
        # counted as sync_in / received gaps), more keeps every frame a short burst long at
        # the cost of latency when the machine cannot keep up (README, "Real time").
        self.camera_queue = int(declare_read_only(
            self, "camera_queue", 5, "frames kept per camera topic while busy (1: newest only)"))
        if self.camera_queue < 1:
            raise StartupError(f"camera_queue must be >= 1, got {self.camera_queue}")
        if reliability not in CAMERA_QOS:
            raise StartupError(f"camera_qos must be one of {sorted(CAMERA_QOS)}, got "
                               f"{reliability!r}")
        try:
            self.config = read_preprocessing(model)
        except (CheckpointError, ValueError) as exc:
            raise StartupError(f"parameter model: {exc}") from exc
        self.preprocessing_id = self.config.fingerprint()
        self.finder = self.part_finder_config()
        # The supporting plane of the last frame: checked on the next instead of a new RANSAC.
        self.plane_hint = None  # Optional[PlaneHint]
        # Full-frame arrays perception works in, reused from frame to frame.
        self.scratch = None  # Optional[FrameScratch]
        # A part crop, height map or voxel grid cannot be made without finding the part;
        # otherwise it is a choice (off for scenes without a supporting plane, e.g. a camera
        # filling its view with one surface).
        self.find_part = bool(declare_read_only(
            self, "find_part", True, "look for the part on a supporting plane")) or \
            self.config.finds_part
        self.max_stamp_skew = float(declare_dynamic(
            self, "max_stamp_skew_s", 5.0, "warn when a frame's stamp is further than this "
            "from the node's clock; 0: off"))
        self.cloud_points = int(declare_dynamic(self, "cloud_points", 20000,
                                                "at most this many points in the part cloud"))
        on_parameter_changes(self, {
            **{name: partial(self.set_finder_parameter, name) for name in FINDER_PARAMETERS},
            "cloud_points": self.set_cloud_points,
            "max_stamp_skew_s": lambda value: setattr(self, "max_stamp_skew", float(value))})
        stale_after = float(declare_read_only(
            self, "stale_after_s", 2.0, "diagnostics WARN after this long without input; 0: off"))
        self.health = NodeHealth(self, "preprocess", stale_after=stale_after)
        self.publisher = self.create_publisher(ModelInput, "model_input", RELIABLE_OUT)
        self.health.gauge("model_input_subscribers", self.publisher.get_subscription_count)
        # Callables that take each ModelInput in this process (the composed scorer).
        self.local_consumers = []
        self.sync_settings = dict(queue_size=queue_size, slop=slop,
                                  on_arrival=lambda i: self.health.count(SYNC_INPUTS[i]))
        self.sync = self.subscribe_camera(CAMERA_QOS[reliability](self.camera_queue))
        if reliability == "auto":
            self.qos_timer = self.create_timer(1.0, self.follow_camera_qos)
        self.get_logger().info(
            f"preprocessing {self.config.mode} {self.config.size}px (id {self.preprocessing_id}, "
            f"sync: {self.sync.implementation})")

    def subscribe_camera(self, qos):
        return subscribe_synchronized(
            self, [(Image, "color/image_raw"), (Image, "depth/image_raw"),
                   (CameraInfo, "color/camera_info")], self.on_frame, qos=qos,
            **self.sync_settings)

    def follow_camera_qos(self) -> None:
        """camera_qos auto: once a best-effort camera appears, subscribe best effort."""
        if not has_best_effort_publisher(self, self.resolve_topic_name("color/image_raw")):
            return
        self.sync.destroy()
        self.sync = self.subscribe_camera(CAMERA_QOS["best_effort"](self.camera_queue))
        self.qos_timer.cancel()
        self.get_logger().info("the camera publishes best effort: subscribed best effort")

    def check_stamp(self, color: Image) -> None:
        """A stamp far from this machine's clock (unsynchronised clocks, a bag replayed
        without use_sim_time) breaks matching verdicts to TF: counted and warned about."""
        if self.max_stamp_skew <= 0:
            return
        skew = abs(self.get_clock().now().nanoseconds - stamp_ns(color.header.stamp)) / 1e9
        if skew > self.max_stamp_skew:
            self.health.report_error("stamp_skew", f"frame {stamp_text(color)} is {skew:.1f} s "
                                     "from this node's clock (use_sim_time for bags? clocks "
                                     "synchronised?)")

    def part_finder_config(self) -> PartFinderConfig:
        """The part finder's settings from parameters; they can change at run time (the next
        frame uses them), e.g. to fit the workspace box while watching rviz."""
        values = {name: declare_dynamic(self, name, default, description)
                  for name, (default, description) in FINDER_PARAMETERS.items()}
        try:
            return finder_config(values)
        except ValueError as exc:
            raise StartupError(f"part finder parameters: {exc}") from exc

    def set_finder_parameter(self, name, value) -> None:
        values = {key: getattr(self.finder, key) for key in FINDER_PARAMETERS}
        values[name] = value
        self.finder = finder_config(values)   # raises ValueError: the change is refused
        self.plane_hint = None                 # e.g. a new workspace: find the plane afresh

    def set_cloud_points(self, value) -> None:
        if int(value) < 1:
            raise ValueError("cloud_points must be >= 1")
        self.cloud_points = int(value)

    def on_frame(self, color: Image, depth: Image, info: CameraInfo):
        received = wall_time_msg()
        self.health.count("received")
        self.check_stamp(color)
        rgb = None
        started = time.perf_counter()
        try:
            frame, rgb = self.prepare(color, depth, info)
        except ImageEncodingError as exc:
            self.health.report_error("bad_encoding", f"frame {stamp_text(color)}: {exc}")
            frame = FrameInput(Status.INVALID_INPUT, f"bad encoding: {exc}")
        except ValueError as exc:
            self.health.report_error("bad_frame", f"frame {stamp_text(color)}: {exc}")
            frame = FrameInput(Status.INVALID_INPUT, str(exc))
        except Exception as exc:  # noqa: BLE001 - one broken frame must not stop the node
            self.health.report_error("internal", f"frame {stamp_text(color)}: "
                                     f"{type(exc).__name__}: {exc}")
            frame = FrameInput(Status.INVALID_INPUT, f"internal error: {exc}")
        if frame.status is Status.NO_PART:
            self.health.count("no_part")
        elif frame.status is Status.INVALID_INPUT:
            self.health.count("invalid_input")
        # Every frame set gets a message: the scorer turns the others into NO_PART /
        # INVALID_INPUT verdicts, so a robot waiting for this frame learns it was not inspected.
        self.hand_on(self.model_input(color, rgb, frame, received))
        self.health.count("processed")
        self.health.observe("preprocess_ms", 1000 * (time.perf_counter() - started))

    def hand_on(self, message: ModelInput) -> None:
        """To the scorer in this process (composed), then to the topic when anyone listens:
        converting a message for rmw costs a copy of every array in it, even for nobody."""
        for consumer in self.local_consumers:
            consumer(message)
        if self.publisher.get_subscription_count():
            self.publisher.publish(message)

    def prepare(self, color: Image, depth: Image, info: CameraInfo):
        """-> (FrameInput, the colour image as HxWx3 uint8); raises on broken messages."""
        if (info.width, info.height) not in ((0, 0), (color.width, color.height)):
            raise ValueError(f"camera_info is {info.width}x{info.height} but the colour "
                             f"image is {color.width}x{color.height}")
        if depth.header.frame_id and color.header.frame_id and \
                depth.header.frame_id != color.header.frame_id:
            raise ValueError(f"depth is in frame {depth.header.frame_id!r}, colour in "
                             f"{color.header.frame_id!r}: not aligned; subscribe to the aligned "
                             "depth (realsense2_camera align_depth.enable:=true)")
        if (depth.width, depth.height) != (color.width, color.height):
            raise ValueError(f"depth is {depth.width}x{depth.height}, colour "
                             f"{color.width}x{color.height}: subscribe to the aligned depth "
                             "(realsense2_camera align_depth.enable:=true)")
        rgb = image_to_rgb(color)
        needs_depth = self.config.uses_depth or self.find_part
        depth_m = image_to_depth_m(depth) if needs_depth else None
        intrinsics = intrinsics_from_camera_info(info, color.width, color.height)
        if self.find_part and intrinsics is None:
            raise ValueError("camera_info has no calibration (K is zero): cannot find the "
                             "part; set find_part:=false for a fixed-crop model")
        # The raw crop: the scorer normalises it (its exported graph, or training's numpy code).
        if depth_m is not None:
            self.scratch = FrameScratch.for_shape(self.scratch, depth_m.shape)
        frame = prepare_frame(rgb, depth_m, intrinsics, self.config, self.finder,
                              find_part_in_frame=self.find_part, normalized=False,
                              plane_hint=self.plane_hint, scratch=self.scratch)
        self.plane_hint = PlaneHint.from_observation(frame.part) or self.plane_hint
        return frame, rgb

    def model_input(self, color: Image, rgb, frame: FrameInput, received) -> ModelInput:
        message = ModelInput(header=color.header, status=int(frame.status),
                             status_detail=frame.detail, received=received,
                             preprocessing_id=self.preprocessing_id, **part_fields(frame.part))
        if frame.part is not None and frame.part.points is not None:
            message.part_cloud = part_cloud(color.header, frame.part, rgb,
                                            self.cloud_points)
        if frame.inspected:
            array = frame.model_input
            x, y, w, h = frame.crop
            if self.config.mode == "voxel":
                message.voxels = voxel_grid_message(color.header, frame.part, array[0],
                                                    self.config.voxel_kind,
                                                    self.config.height_range_m)
            else:
                message.input = numpy_to_image(array.transpose(1, 2, 0).copy(),
                                               f"32FC{array.shape[0]}", color.header)
            # Re-use the incoming colour message when it already is rgb8: no copy of the pixels.
            message.color = color if color.encoding == "rgb8" else \
                numpy_to_image(rgb, "rgb8", color.header)
            message.crop = RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h)
        return message


def main(args=None):
    run_node(PreprocessNode, args)


if __name__ == "__main__":
    main()
