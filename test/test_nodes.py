"""Single nodes in their own processes, driven over DDS: bad input, startup errors, replay."""

import math
import signal
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gan_anomaly_ros.checkpoint import read_preprocessing
from gan_anomaly_ros.graph import preprocess_node, replay_camera_node, ros_arguments, scorer_node
from process_helpers import (read_output, start_module, stop_process, wait_for_output,
                             wait_process)
from ros_peer import Peer

pytestmark = pytest.mark.requires_ros

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture
def peer():
    p = Peer()
    yield p
    p.close()


def start_node(spec, env):
    return start_module(spec.module, *ros_arguments(spec), env=env)


def diagnostics_values(peer, name_part):
    statuses = [s for a in peer.received["/diagnostics"] for s in a.status if name_part in s.name]
    return {kv.key: kv.value for kv in statuses[-1].values} if statuses else {}


def model_input(config, array, preprocessing_id, encoding=None):
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import RegionOfInterest

    from gan_anomaly_ros.msg import ModelInput
    from gan_anomaly_ros.ros.image_conversion import numpy_to_image

    from gan_anomaly_ros.msg import AnomalyScore

    message = ModelInput(preprocessing_id=preprocessing_id, status=AnomalyScore.INSPECTED)
    message.header.frame_id = "camera_color_optical_frame"
    message.input = numpy_to_image(array, encoding or f"32FC{array.shape[2]}")
    message.color = numpy_to_image(np.zeros((120, 160, 3), np.uint8), "rgb8")
    message.crop = RegionOfInterest(x_offset=40, y_offset=20, width=80, height=80)
    message.received = Time(sec=int(time.time()), nanosec=0)
    return message


def test_scorer_survives_bad_inputs_and_counts_them(small_checkpoint, ros_env, peer):
    from diagnostic_msgs.msg import DiagnosticArray

    from gan_anomaly_ros.msg import AnomalyScore, ModelInput

    config = read_preprocessing(small_checkpoint)
    good_id = config.fingerprint()
    size = config.size
    peer.listen(AnomalyScore, "/anomaly_score")
    peer.listen(DiagnosticArray, "/diagnostics")
    publisher = peer.node.create_publisher(ModelInput, "/gan_anomaly/model_input", 10)
    process = start_node(scorer_node(str(small_checkpoint), "cpu"), ros_env)
    try:
        wait_for_output(process, "threshold", timeout=90)
        peer.wait_for_subscribers([publisher], process=process)
        bad_inputs = [
            model_input(config, np.zeros((size, size, 4), np.float32), "0123456789abcdef"),
            model_input(config, np.zeros((size, size, 3), np.float32), good_id),
            model_input(config, np.zeros((size, size, 4), np.float32), good_id),
        ]
        bad_inputs[2].input.encoding = "no_such_encoding"
        good = model_input(config, np.zeros((size, size, 4), np.float32), good_id)
        kinds = ("preprocessing_mismatch", "bad_input", "bad_encoding")

        def all_counted():
            values = diagnostics_values(peer, "scorer")
            return all(int(values.get(f"errors.{kind}", 0)) >= 1 for kind in kinds)

        # The scorer keeps only the newest input, so publish slowly and repeat until every
        # kind of bad input has been counted and a good one scored.
        deadline = time.monotonic() + 90
        def scored():
            return any(s.status == AnomalyScore.INSPECTED for s in peer.received["/anomaly_score"])

        while not (scored() and all_counted()):
            assert time.monotonic() < deadline, diagnostics_values(peer, "scorer")
            for message in bad_inputs + [good]:
                publisher.publish(message)
                time.sleep(0.4)
        assert process.poll() is None, "the scorer must keep running"
    finally:
        output = stop_process(process)
    assert "expects" in output and "does not match" in output and "no_such_encoding" in output
    verdicts = peer.received["/anomaly_score"]
    assert verdicts[0].header.frame_id == "camera_color_optical_frame"
    # Every input the scorer could not use was answered, and never as a good part.
    rejected = [v for v in verdicts if v.status == AnomalyScore.INVALID_INPUT]
    assert rejected and all(v.is_anomaly and np.isnan(v.score) for v in rejected)
    assert {v.status_detail.split(":")[0] for v in rejected} >= set(kinds)


def test_a_flooded_scorer_stops_cleanly_on_ctrl_c(small_checkpoint, ros_env, peer):
    """Ctrl-C while inputs pour in (each one dropped for a newer one is answered SKIPPED, so
    the scorer is publishing all the time): exit code 0 and no traceback, every time. Python's
    KeyboardInterrupt used to land inside a callback or the cleanup: exit 1, or a hang."""
    from gan_anomaly_ros.msg import ModelInput

    config = read_preprocessing(small_checkpoint)
    message = model_input(config, np.zeros((config.size, config.size, 4), np.float32),
                          config.fingerprint())
    publisher = peer.node.create_publisher(ModelInput, "/gan_anomaly/model_input", 10)
    for attempt in range(3):
        process = start_node(scorer_node(str(small_checkpoint), "cpu"), ros_env)
        try:
            wait_for_output(process, "threshold", timeout=90)
            peer.wait_for_subscribers([publisher], process=process)
            flood_until = time.monotonic() + 1.0 + 0.5 * attempt
            while time.monotonic() < flood_until:
                publisher.publish(message)
            process.send_signal(signal.SIGINT)
            while process.poll() is None and time.monotonic() < flood_until + 10:
                publisher.publish(message)  # still flooding while it shuts down
        finally:
            output = stop_process(process)
        assert process.returncode == 0 and "Traceback" not in output, (attempt, output[-3000:])


def camera_publishers(peer, qos=None):
    """Publishers like realsense-ros' (reliable, its default; or ``qos``)."""
    from sensor_msgs.msg import CameraInfo, Image

    from gan_anomaly_ros.graph import CAMERA_INFO_TOPIC, COLOR_TOPIC, DEPTH_TOPIC
    from gan_anomaly_ros.ros.qos import RELIABLE_OUT

    qos = qos or RELIABLE_OUT
    return {name: peer.node.create_publisher(kind, topic, qos) for name, kind, topic in [
        ("color", Image, COLOR_TOPIC), ("depth", Image, DEPTH_TOPIC),
        ("info", CameraInfo, CAMERA_INFO_TOPIC)]}


def send_frame(peer, pubs, color_array, color_encoding, depth_array, depth_encoding,
               intrinsics=None, depth_frame="camera_color_optical_frame"):
    """One synchronised colour + depth + camera_info set; returns its stamp."""
    from sensor_msgs.msg import CameraInfo

    from gan_anomaly_ros.ros.image_conversion import numpy_to_image

    stamp = peer.node.get_clock().now().to_msg()
    color = numpy_to_image(color_array, color_encoding)
    depth = numpy_to_image(depth_array, depth_encoding)
    info = CameraInfo(width=color.width, height=color.height)
    if intrinsics is not None:
        info.k = intrinsics.K.ravel().tolist()
    for message in (color, depth, info):
        message.header.stamp = stamp
        message.header.frame_id = "camera_color_optical_frame"
    depth.header.frame_id = depth_frame
    pubs["color"].publish(color)
    pubs["depth"].publish(depth)
    pubs["info"].publish(info)
    return (stamp.sec, stamp.nanosec)


def test_preprocess_passes_bad_frames_on_as_invalid_and_keeps_running(small_checkpoint,
                                                                      ros_env, peer):
    from gan_anomaly_ros.msg import AnomalyScore, ModelInput
    from gan_anomaly_ros.perception.geometry import D435_COLOR_640X480

    intrinsics = D435_COLOR_640X480.scaled(160, 120)
    peer.listen(ModelInput, "/gan_anomaly/model_input")
    pubs = camera_publishers(peer)
    process = start_node(preprocess_node(str(small_checkpoint)), ros_env)
    table = np.full((120, 160), 500, np.uint16)
    frames = {  # name -> (colour, encoding, depth, camera intrinsics, expected detail)
        "not_colour": (np.zeros((120, 160), np.float32), "32FC1", table, intrinsics, "32FC1"),
        "unaligned": (np.zeros((120, 160, 3), np.uint8), "rgb8", table[:60, :80], intrinsics,
                      "aligned"),
        "uncalibrated": (np.zeros((120, 160, 3), np.uint8), "rgb8", table, None, "K is zero"),
        "empty_table": (np.zeros((120, 160, 3), np.uint8), "bgr8", table, intrinsics,
                        "nothing above the plane"),
        # Same size, but the depth camera's own frame: a RealSense's unaligned depth topic.
        "depth_frame": (np.zeros((120, 160, 3), np.uint8), "rgb8", table, intrinsics,
                        "not aligned")}
    try:
        wait_for_output(process, "preprocessing rgbd", timeout=90)
        peer.wait_for_subscribers(pubs.values(), process=process)
        peer.wait_for_publishers(["/gan_anomaly/model_input"], process=process)
        stamps = {send_frame(peer, pubs, c, e, d, "16UC1", k,
                             "camera_depth_optical_frame" if name == "depth_frame"
                             else "camera_color_optical_frame"): name
                  for name, (c, e, d, k, _) in frames.items()}
        got = peer.wait_for("/gan_anomaly/model_input", len(frames), timeout=60,
                            process=process)
        assert process.poll() is None
    finally:
        output = stop_process(process)
    by_name = {stamps[(m.header.stamp.sec, m.header.stamp.nanosec)]: m for m in got}
    assert set(by_name) == set(frames), "every frame set gets a model input"
    for name, (_, _, _, _, detail) in frames.items():
        message = by_name[name]
        expected = AnomalyScore.NO_PART if name == "empty_table" else AnomalyScore.INVALID_INPUT
        assert message.status == expected, (name, message.status)
        assert detail in message.status_detail, (name, message.status_detail)
        assert message.input.width == 0 and message.preprocessing_id == \
            read_preprocessing(small_checkpoint).fingerprint()
    assert "32FC1" in output and "aligned" in output


def test_frames_not_inspected_never_come_out_good(small_checkpoint, ros_env, peer):
    """Across processes over DDS: all-zero, all-NaN, infinite and negative depth give
    INVALID_INPUT, an empty workspace NO_PART, a part on the table INSPECTED with its centroid;
    only the inspected part may be judged good."""
    from gan_anomaly_ros.data.synthetic import render_scene
    from gan_anomaly_ros.msg import AnomalyScore
    from gan_anomaly_ros.perception.geometry import D435_COLOR_640X480

    intrinsics = D435_COLOR_640X480.scaled(320, 240)
    scene = render_scene(5, intrinsics=intrinsics)
    shape = scene.depth_mm.shape
    empty = np.full(shape, int(np.median(scene.depth_mm)), np.uint16)
    frames = {
        "zero": (scene.depth_mm * 0, "16UC1", AnomalyScore.INVALID_INPUT),
        "nan": (np.full(shape, np.nan, np.float32), "32FC1", AnomalyScore.INVALID_INPUT),
        "inf": (np.full(shape, np.inf, np.float32), "32FC1", AnomalyScore.INVALID_INPUT),
        "negative": (np.full(shape, -0.5, np.float32), "32FC1", AnomalyScore.INVALID_INPUT),
        "empty": (empty, "16UC1", AnomalyScore.NO_PART),
        "part": (scene.depth_mm, "16UC1", AnomalyScore.INSPECTED),
        "part_metres": (scene.depth_m, "32FC1", AnomalyScore.INSPECTED)}
    peer.listen(AnomalyScore, "/anomaly_score")
    pubs = camera_publishers(peer)
    checkpoint = str(small_checkpoint)
    scorer = start_node(scorer_node(checkpoint, "cpu"), ros_env)
    preprocess = start_node(preprocess_node(checkpoint), ros_env)
    try:
        wait_for_output(scorer, "threshold", timeout=90)
        wait_for_output(preprocess, "preprocessing", timeout=90)
        peer.wait_for_subscribers(pubs.values(), process=preprocess)
        peer.wait_for_publishers(["/anomaly_score"], process=scorer)
        stamps = {}
        for name, (depth, encoding, _) in frames.items():
            # One frame at a time (the scorer keeps only the newest input), sent again until
            # answered: preprocess and scorer may still be discovering each other at first.
            answered = len(peer.received["/anomaly_score"]) + 1
            for _ in range(10):
                stamps[send_frame(peer, pubs, scene.color, "rgb8", depth, encoding,
                                  intrinsics)] = name
                deadline = time.monotonic() + 3.0
                while len(peer.received["/anomaly_score"]) < answered and \
                        time.monotonic() < deadline:
                    time.sleep(0.05)
                if len(peer.received["/anomaly_score"]) >= answered:
                    break
            scores = peer.wait_for("/anomaly_score", answered, timeout=5, process=scorer)
    finally:
        stop_process(preprocess)
        stop_process(scorer)
    verdicts = [(stamps[(m.header.stamp.sec, m.header.stamp.nanosec)], m) for m in scores]
    assert {name for name, _ in verdicts} == set(frames)
    for name, verdict in verdicts:
        status = frames[name][2]
        assert verdict.status == status, (name, verdict.status, verdict.status_detail)
        if status != AnomalyScore.INSPECTED:
            assert verdict.is_anomaly, f"{name}: a frame that was not inspected came out good"
            assert np.isnan(verdict.score) and np.isnan(verdict.centroid.x)
            assert verdict.status_detail
        else:
            truth = np.array(scene.info["part_center_camera_m"])
            centroid = np.array([verdict.centroid.x, verdict.centroid.y, verdict.centroid.z])
            assert np.linalg.norm(centroid - truth) < 0.005
            assert np.isfinite(verdict.score) and verdict.part_size.z > 0.015


@pytest.mark.parametrize("model,reason", [("/nonexistent/model.safetensors", "does not exist"),
                                          ("{tmp}/missing.safetensors", "does not exist"),
                                          ("{tmp}", "is a directory")])
def test_scorer_refuses_to_start_without_a_usable_checkpoint(model, reason, ros_env, tmp_path):
    spec = scorer_node(model.format(tmp=tmp_path), "cpu")
    output = wait_process(start_node(spec, ros_env), timeout=60)
    assert reason in output


def test_scorer_refuses_corrupt_checkpoint_and_unknown_device(small_checkpoint, ros_env, tmp_path):
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(small_checkpoint.read_bytes()[:1000])
    process = start_node(scorer_node(str(corrupt), "cpu"), ros_env)
    assert "corrupt" in wait_process(process, timeout=60)
    assert process.returncode == 2
    process = start_node(scorer_node(str(small_checkpoint), "tpu"), ros_env)
    assert "device must be one of" in wait_process(process, timeout=60)


@pytest.mark.skipif(not (SHARED / "magnetic_tile").is_dir(),
                    reason=f"shared datasets not found at {SHARED}")
def test_replay_camera_plays_an_mvtec_folder(ros_env, peer):
    from sensor_msgs.msg import CameraInfo, Image

    from gan_anomaly_ros.ros.image_conversion import image_to_numpy

    for topic, kind in [("/camera/camera/color/image_raw", Image),
                        ("/camera/camera/aligned_depth_to_color/image_raw", Image),
                        ("/camera/camera/color/camera_info", CameraInfo),
                        ("/camera/camera/ground_truth/defect_mask", Image)]:
        peer.listen(kind, topic)
    spec = replay_camera_node(source=str(SHARED / "magnetic_tile"), rate=20.0, split="test")
    process = start_node(spec, ros_env)
    try:
        colors = peer.wait_for("/camera/camera/color/image_raw", 3, process=process)
        peer.wait_for("/camera/camera/color/camera_info", 3, process=process)
        depths = peer.wait_for("/camera/camera/aligned_depth_to_color/image_raw", 3,
                               process=process)
    finally:
        stop_process(process)
    color, depth = colors[0], depths[0]
    info = peer.received["/camera/camera/color/camera_info"][0]
    assert color.encoding == "rgb8" and depth.encoding == "16UC1"
    assert (depth.width, depth.height) == (color.width, color.height) == (info.width, info.height)
    assert color.header.stamp == depth.header.stamp
    # magnetic_tile is grayscale: replayed as rgb8 with equal channels, and no depth (0).
    rgb = image_to_numpy(color)
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and not image_to_numpy(depth).any()


def test_replay_camera_plays_an_rgbd_folder_with_its_intrinsics(synthetic_dataset, ros_env, peer):
    from sensor_msgs.msg import CameraInfo, Image

    from gan_anomaly_ros.perception.geometry import D435_COLOR_640X480
    from gan_anomaly_ros.ros.image_conversion import image_to_numpy

    depth_topic = "/camera/camera/aligned_depth_to_color/image_raw"
    peer.listen(Image, depth_topic)
    peer.listen(CameraInfo, "/camera/camera/color/camera_info")
    spec = replay_camera_node(source=str(synthetic_dataset), rate=20.0, split="test")
    process = start_node(spec, ros_env)
    try:
        depths = peer.wait_for(depth_topic, 2, process=process)
        infos = peer.wait_for("/camera/camera/color/camera_info", 2, process=process)
    finally:
        stop_process(process)
    depth_mm = image_to_numpy(depths[0])
    # Table about half a metre away, in millimetres, as RealSense publishes it.
    assert 400 < np.median(depth_mm[depth_mm > 0]) < 700
    assert infos[0].k[0] == pytest.approx(D435_COLOR_640X480.fx)


def test_replay_camera_needs_the_scale_of_8_bit_depth(ros_env, peer, tmp_path):
    from sensor_msgs.msg import Image

    from gan_anomaly_ros.ros.image_conversion import image_to_numpy
    from depth_data import eight_bit_rgbd_dataset

    data = eight_bit_rgbd_dataset(tmp_path / "data")
    refused = start_node(replay_camera_node(source=str(data), rate=20.0, split="test"), ros_env)
    output = wait_process(refused, timeout=60)
    assert "8-bit depth image" in output and "depth_scale" in output
    assert refused.returncode == 2
    depth_topic = "/camera/camera/aligned_depth_to_color/image_raw"
    peer.listen(Image, depth_topic)
    spec = replay_camera_node(source=str(data), rate=20.0, split="test", depth_scale=0.002)
    process = start_node(spec, ros_env)
    try:
        depths = peer.wait_for(depth_topic, 1, process=process)
    finally:
        stop_process(process)
    depth_mm = image_to_numpy(depths[0])
    assert depth_mm[0, 0] == 200 and depth_mm[20, 20] in (280, 240)  # levels x 2 mm


def set_parameter(peer, node_name: str, name: str, value):
    """What `ros2 param set` does: the node's SetParameters service. -> (successful, reason)"""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    client = peer.node.create_client(SetParameters, f"/{node_name}/set_parameters")
    assert client.wait_for_service(timeout_sec=30), f"/{node_name}/set_parameters not offered"
    future = client.call_async(SetParameters.Request(
        parameters=[Parameter(name, value=value).to_parameter_msg()]))
    deadline = time.monotonic() + 30
    while not future.done():
        assert time.monotonic() < deadline, "no answer from set_parameters"
        time.sleep(0.05)
    result = future.result().results[0]
    peer.node.destroy_client(client)
    return result.successful, result.reason


def test_scorer_parameters_change_at_run_time_or_are_refused(small_checkpoint, ros_env, peer):
    from sensor_msgs.msg import Image

    from gan_anomaly_ros.msg import AnomalyScore, ModelInput

    config = read_preprocessing(small_checkpoint)
    good = model_input(config, np.zeros((config.size, config.size, 4), np.float32),
                       config.fingerprint())
    scores = peer.listen(AnomalyScore, "/anomaly_score")
    heatmaps = peer.listen(Image, "/anomaly_heatmap")
    publisher = peer.node.create_publisher(ModelInput, "/gan_anomaly/model_input", 10)
    process = start_node(scorer_node(str(small_checkpoint), "cpu"), ros_env)

    def verdict_after_change():
        count = len(scores)
        deadline = time.monotonic() + 30
        while len(scores) <= count:
            assert time.monotonic() < deadline, "no verdict"
            publisher.publish(good)
            time.sleep(0.3)
        return scores[-1]

    try:
        wait_for_output(process, "threshold", timeout=90)
        peer.wait_for_subscribers([publisher], process=process)
        calibrated = verdict_after_change().threshold
        assert set_parameter(peer, "scorer", "threshold", -1e6)[0]
        low = verdict_after_change()
        assert low.threshold == -1e6 and low.is_anomaly and low.score_normalized > 0.5
        assert set_parameter(peer, "scorer", "threshold", 1e6)[0]
        high = verdict_after_change()
        assert high.threshold == 1e6 and not high.is_anomaly
        assert calibrated not in (-1e6, 1e6)
        # Pictures off: verdicts keep coming, heatmaps stop.
        assert set_parameter(peer, "scorer", "publish_images", False)[0]
        verdict_after_change()
        time.sleep(1.0)
        seen = len(heatmaps)
        for _ in range(3):
            verdict_after_change()
        assert len(heatmaps) == seen
        # What needs a restart is refused, with the reason, not "successful".
        ok, reason = set_parameter(peer, "scorer", "model", "/tmp/other.safetensors")
        assert not ok and "read-only" in reason.lower()
        ok, reason = set_parameter(peer, "scorer", "threshold", float("nan"))
        assert not ok and "finite" in reason
        assert process.poll() is None
    finally:
        stop_process(process)


def test_empty_model_means_the_default_model_everywhere(small_checkpoint, ros_env, tmp_path):
    """model:='' (the params file's default) loads the default model, as the launch file does;
    without one, the error says how to get it."""
    import shutil

    home = tmp_path / "home"
    env = dict(ros_env, GAN_ANOMALY_HOME=str(home))
    output = wait_process(start_node(scorer_node("", "cpu"), env), timeout=60)
    assert "gan-anomaly demo" in output and "does not exist" in output
    default = home / "models" / "default_rgbd.safetensors"
    default.parent.mkdir(parents=True)
    shutil.copy(small_checkpoint, default)
    # As `ros2 run gan_anomaly_ros scorer_node --ros-args --params-file config/inspect.yaml`.
    params = Path(__file__).resolve().parents[1] / "config" / "inspect.yaml"
    processes = [start_module(f"gan_anomaly_ros.nodes.{name}_node", "--ros-args", "-r",
                              f"__node:={name}", "--params-file", str(params), env=env)
                 for name in ("preprocess", "scorer")]
    try:
        wait_for_output(processes[0], "preprocessing rgbd", timeout=90)
        wait_for_output(processes[1], "threshold", timeout=90)
    finally:
        for process in processes:
            stop_process(process)


def test_part_finder_parameters_apply_on_the_next_frame(small_checkpoint, ros_env, peer):
    from gan_anomaly_ros.data.synthetic import render_scene
    from gan_anomaly_ros.msg import AnomalyScore, ModelInput
    from gan_anomaly_ros.perception.geometry import D435_COLOR_640X480

    from diagnostic_msgs.msg import DiagnosticArray

    intrinsics = D435_COLOR_640X480.scaled(320, 240)
    scene = render_scene(2, intrinsics=intrinsics)
    inputs = peer.listen(ModelInput, "/gan_anomaly/model_input")
    diagnostics = peer.listen(DiagnosticArray, "/diagnostics")

    def preprocess_statuses():
        return [s for a in list(diagnostics) for s in a.status if s.name.startswith("preprocess")]
    pubs = camera_publishers(peer)
    process = start_node(preprocess_node(str(small_checkpoint)), ros_env)

    def status_of_next_frame():
        count = len(inputs)
        send_frame(peer, pubs, scene.color, "rgb8", scene.depth_mm, "16UC1", intrinsics)
        return peer.wait_for("/gan_anomaly/model_input", count + 1, timeout=30,
                             process=process)[-1].status

    try:
        wait_for_output(process, "preprocessing", timeout=90)
        peer.wait_for_subscribers(pubs.values(), process=process)
        peer.wait_for_publishers(["/gan_anomaly/model_input"], process=process)
        # No camera yet: diagnostics say so (stale_after_s 2) instead of OK.
        deadline = time.monotonic() + 30
        while not any("no input" in s.message for s in preprocess_statuses()):
            assert time.monotonic() < deadline, [s.message for s in preprocess_statuses()]
            time.sleep(0.2)
        assert status_of_next_frame() == AnomalyScore.INSPECTED
        seen = len(preprocess_statuses())
        for _ in range(3):   # frames again: the next report is OK
            status_of_next_frame()
            time.sleep(0.4)
        assert any(s.message == "ok" for s in preprocess_statuses()[seen:])
        assert set_parameter(peer, "preprocess", "min_height_m", 0.1)[0]  # taller than the part
        assert status_of_next_frame() == AnomalyScore.NO_PART
        ok, reason = set_parameter(peer, "preprocess", "workspace_max", [1.0, 1.0])
        assert not ok and "workspace_max" in reason
        ok, reason = set_parameter(peer, "preprocess", "min_height_m", 0.9)  # above max_height
        assert not ok and "min_height_m" in reason
        assert set_parameter(peer, "preprocess", "min_height_m", 0.005)[0]
        assert status_of_next_frame() == AnomalyScore.INSPECTED
        ok, reason = set_parameter(peer, "preprocess", "slop", 0.2)
        assert not ok and "read-only" in reason.lower()
    finally:
        stop_process(process)


def test_sorting_client_decides_per_part_and_never_accepts_what_was_not_inspected(ros_env,
                                                                                  peer):
    from geometry_msgs.msg import Point, PoseStamped

    from gan_anomaly_ros.graph import sorting_client_node
    from gan_anomaly_ros.msg import AnomalyScore, SortDecision
    from gan_anomaly_ros.ros.qos import RELIABLE_OUT

    decisions = peer.listen(SortDecision, "/sort_decision", RELIABLE_OUT)
    picks = peer.listen(PoseStamped, "/pick_target", RELIABLE_OUT)
    publisher = peer.node.create_publisher(AnomalyScore, "/anomaly_score", RELIABLE_OUT)
    process = start_node(sorting_client_node(accept_after=3, reject_after=2, retry_after=3),
                         ros_env)

    def verdict(status, is_anomaly, x=0.0):
        message = AnomalyScore(status=status, is_anomaly=is_anomaly,
                               centroid=Point(x=x, y=0.0, z=0.5))
        message.header.frame_id = "camera_color_optical_frame"
        message.part_pose.position = message.centroid
        message.part_pose.orientation.w = 1.0
        return message

    sequence = (
        # Part A: good, good, one anomalous frame, then three good: accepted (hysteresis).
        [verdict(1, False)] * 2 + [verdict(1, True)] + [verdict(1, False)] * 3 +
        [verdict(2, True)] +                                  # the cell empties
        # Part B elsewhere: two anomalous frames: rejected.
        [verdict(1, True, 0.1)] * 2 + [verdict(2, True)] +
        # Part C: unusable frames only (even one claiming is_anomaly false): retry, no pick.
        [verdict(3, True), verdict(3, False), verdict(3, True)])
    try:
        wait_for_output(process, "sorting:", timeout=60)
        peer.wait_for_subscribers([publisher], process=process)
        peer.wait_for_publishers(["/sort_decision", "/pick_target"], process=process)
        for message in sequence:
            publisher.publish(message)
            time.sleep(0.05)
        got = peer.wait_for("/sort_decision", 3, timeout=30, process=process)
        time.sleep(0.5)
    finally:
        stop_process(process)
    assert [d.decision for d in got] == [SortDecision.ACCEPT, SortDecision.REJECT,
                                         SortDecision.RETRY]
    assert [round(p.pose.position.x, 3) for p in picks] == [0.0, 0.1]
    assert got[0].frames == 3 and got[2].reason == "3 frames in a row not inspected"


def test_a_camera_gap_and_a_scorer_restart_do_not_stop_the_line(small_checkpoint, ros_env,
                                                                peer):
    """Faults across processes: the camera stops for seconds and comes back (verdicts resume,
    the preprocess diagnostics showed the gap); the scorer is killed and restarted (the
    preprocess node keeps going, verdicts resume)."""
    import signal

    from diagnostic_msgs.msg import DiagnosticArray

    from gan_anomaly_ros.data.synthetic import render_scene
    from gan_anomaly_ros.msg import AnomalyScore
    from gan_anomaly_ros.perception.geometry import D435_COLOR_640X480

    intrinsics = D435_COLOR_640X480.scaled(320, 240)
    scene = render_scene(4, intrinsics=intrinsics)
    scores = peer.listen(AnomalyScore, "/anomaly_score")
    diagnostics = peer.listen(DiagnosticArray, "/diagnostics")
    pubs = camera_publishers(peer)
    checkpoint = str(small_checkpoint)
    preprocess = start_node(preprocess_node(checkpoint), ros_env)
    scorer = start_node(scorer_node(checkpoint, "cpu"), ros_env)

    def verdicts_flow(seconds=20):
        """Send frames until three more parts were inspected. A busy (or just restarted, still
        warming up) scorer may answer some frames SKIPPED, which is its contract; any other
        status would mean the frames were judged wrongly."""
        count, deadline = len(scores), time.monotonic() + seconds
        while sum(s.status == AnomalyScore.INSPECTED for s in scores[count:]) < 3:
            assert time.monotonic() < deadline, "verdicts did not resume"
            assert preprocess.poll() is None, "the preprocess node died"
            send_frame(peer, pubs, scene.color, "rgb8", scene.depth_mm, "16UC1", intrinsics)
            time.sleep(0.25)
        statuses = {s.status for s in scores[count:]}
        assert statuses <= {AnomalyScore.INSPECTED, AnomalyScore.SKIPPED}, statuses

    try:
        wait_for_output(scorer, "threshold", timeout=90)
        wait_for_output(preprocess, "preprocessing", timeout=90)
        peer.wait_for_subscribers(pubs.values(), process=preprocess)
        verdicts_flow(60)
        gap_started = len(diagnostics)
        time.sleep(3.5)                                      # the camera stops
        gap = [s.message for a in diagnostics[gap_started:] for s in a.status
               if s.name.startswith("preprocess")]
        assert any("no input for" in m for m in gap), gap
        verdicts_flow()                                      # ... and comes back
        scorer.send_signal(signal.SIGKILL)                   # the scorer dies
        scorer.wait(timeout=10)
        for _ in range(4):                                   # frames keep coming meanwhile
            send_frame(peer, pubs, scene.color, "rgb8", scene.depth_mm, "16UC1", intrinsics)
            time.sleep(0.25)
        scorer = start_node(scorer_node(checkpoint, "cpu"), ros_env)
        wait_for_output(scorer, "threshold", timeout=90)
        verdicts_flow(60)
    finally:
        stop_process(preprocess)
        stop_process(scorer)


def test_frames_the_synchroniser_cannot_match_are_counted(small_checkpoint, ros_env, peer):
    from diagnostic_msgs.msg import DiagnosticArray

    from gan_anomaly_ros.ros.image_conversion import numpy_to_image

    peer.listen(DiagnosticArray, "/diagnostics")
    pubs = camera_publishers(peer)
    process = start_node(preprocess_node(str(small_checkpoint)), ros_env)
    try:
        wait_for_output(process, "preprocessing", timeout=90)
        peer.wait_for_subscribers(pubs.values(), process=process)
        for _ in range(3):                       # colour without its depth: never a set
            color = numpy_to_image(np.zeros((120, 160, 3), np.uint8), "rgb8")
            color.header.stamp = peer.node.get_clock().now().to_msg()
            pubs["color"].publish(color)
            time.sleep(0.2)
        deadline = time.monotonic() + 20
        while int(diagnostics_values(peer, "preprocess").get("sync_in.color", 0)) < 3:
            assert time.monotonic() < deadline, diagnostics_values(peer, "preprocess")
            time.sleep(0.2)
    finally:
        stop_process(process)
    values = diagnostics_values(peer, "preprocess")
    assert int(values["received"]) == 0 and int(values.get("sync_in.depth", 0)) == 0


def test_preprocess_hears_best_effort_cameras_too(small_checkpoint, ros_env, peer):
    """realsense-ros publishes reliable by default and best effort when configured so: the
    default camera_qos connects to both (the reliable case is every other test here)."""
    from gan_anomaly_ros.data.synthetic import render_scene
    from gan_anomaly_ros.msg import AnomalyScore, ModelInput
    from gan_anomaly_ros.perception.geometry import D435_COLOR_640X480
    from gan_anomaly_ros.ros.time_sync import sensor_qos

    intrinsics = D435_COLOR_640X480.scaled(320, 240)
    scene = render_scene(6, intrinsics=intrinsics)
    inputs = peer.listen(ModelInput, "/gan_anomaly/model_input")
    pubs = camera_publishers(peer, sensor_qos())
    process = start_node(preprocess_node(str(small_checkpoint)), ros_env)
    try:
        wait_for_output(process, "preprocessing", timeout=90)
        peer.wait_for_subscribers(pubs.values(), process=process)
        deadline = time.monotonic() + 30
        while not inputs:
            assert time.monotonic() < deadline, "nothing from a best-effort camera"
            send_frame(peer, pubs, scene.color, "rgb8", scene.depth_mm, "16UC1", intrinsics)
            time.sleep(0.3)
    finally:
        stop_process(process)
    assert inputs[0].status == AnomalyScore.INSPECTED


def test_replay_rate_changes_at_run_time_and_the_source_is_read_only(ros_env, peer):
    from sensor_msgs.msg import Image

    from gan_anomaly_ros.graph import COLOR_TOPIC
    from gan_anomaly_ros.ros.qos import RELIABLE_OUT

    frames = peer.listen(Image, COLOR_TOPIC, RELIABLE_OUT)
    process = start_node(replay_camera_node(rate=1.0, synthetic_count=2), ros_env)
    try:
        wait_for_output(process, "replaying", timeout=60)
        peer.wait_for(COLOR_TOPIC, 2, timeout=30, process=process)
        assert set_parameter(peer, "replay_camera", "rate", 20.0)[0]
        time.sleep(0.5)
        before = len(frames)
        time.sleep(2.0)
        assert len(frames) - before > 15, "the new rate did not take effect"
        ok, reason = set_parameter(peer, "replay_camera", "source", "/elsewhere")
        assert not ok and "read-only" in reason.lower()
        assert not set_parameter(peer, "replay_camera", "rate", 0.0)[0]
    finally:
        stop_process(process)


def test_scorer_runs_an_exported_model_and_refuses_to_start_without_one(small_checkpoint, ros_env,
                                                                        peer, tmp_path):
    from gan_anomaly_ros.export.exporting import export_checkpoint
    from gan_anomaly_ros.export.verify import ATOL, RTOL
    from gan_anomaly_ros.msg import AnomalyScore, ModelInput
    from gan_anomaly_ros.scoring import Scorer

    spec = scorer_node(str(small_checkpoint), "cpu")

    def with_runtime(**parameters):
        return replace(spec, parameters={**spec.parameters, **parameters})

    output = wait_process(start_node(with_runtime(runtime="onnxruntime"), ros_env), timeout=60)
    assert "need exported_model" in output
    exported = export_checkpoint(small_checkpoint, "onnx", out=tmp_path / "small.onnx")
    config = read_preprocessing(small_checkpoint)
    raw = np.zeros((config.size, config.size, 4), np.float32)   # the raw crop, H x W x C
    raw[..., :3] = np.linspace(0, 255, config.size)[None, :, None]
    raw[..., 3] = 0.5
    raw[10:20, 10:20, 3] = 0.49
    scores = peer.listen(AnomalyScore, "/anomaly_score")
    publisher = peer.node.create_publisher(ModelInput, "/gan_anomaly/model_input", 10)
    process = start_node(with_runtime(runtime="onnxruntime", exported_model=str(exported)),
                         ros_env)
    try:
        wait_for_output(process, "threshold", timeout=90)
        peer.wait_for_subscribers([publisher], process=process)
        deadline = time.monotonic() + 60
        while not any(s.status == AnomalyScore.INSPECTED for s in scores):
            assert time.monotonic() < deadline, "no verdict"
            publisher.publish(model_input(config, raw, config.fingerprint()))
            time.sleep(0.3)
    finally:
        stop_process(process)
    verdict = next(s for s in scores if s.status == AnomalyScore.INSPECTED)
    eager = Scorer(small_checkpoint, "cpu").score_raw(raw.transpose(2, 0, 1))
    assert np.isclose(verdict.score, eager.score, rtol=RTOL, atol=ATOL)


def test_the_fusion_node_pairs_verdicts_by_stamp_and_never_passes_an_unanswered_frame(
        ros_env, peer):
    """verdict_fusion_node as the graph starts it, fed verdicts over DDS: a frame is
    anomalous when either model says so; a frame only one model answered goes out as
    INVALID_INPUT after the timeout; a verdict arriving after that is dropped and counted."""
    from diagnostic_msgs.msg import DiagnosticArray

    from gan_anomaly_ros.graph import (COLOUR_SCORE_TOPIC, DEFAULT_CAMERA, GEOMETRY_SCORE_TOPIC,
                                       SCORE_TOPIC, geometry_nodes)
    from gan_anomaly_ros.msg import AnomalyScore
    from gan_anomaly_ros.ros.qos import RELIABLE_OUT

    fusion = replace(geometry_nodes("/g.safetensors", "cpu", DEFAULT_CAMERA)[-1],
                     parameters={"timeout_s": 1.0})
    fused = peer.listen(AnomalyScore, SCORE_TOPIC, RELIABLE_OUT)
    peer.listen(DiagnosticArray, "/diagnostics")
    colour = peer.node.create_publisher(AnomalyScore, COLOUR_SCORE_TOPIC, RELIABLE_OUT)
    geometry = peer.node.create_publisher(AnomalyScore, GEOMETRY_SCORE_TOPIC, RELIABLE_OUT)
    process = start_node(fusion, ros_env)

    def verdict(sec, status, p, name):
        message = AnomalyScore(status=status, score_normalized=p, model_name=name,
                               is_anomaly=status == AnomalyScore.INSPECTED and p > 0.5)
        message.header.stamp.sec = sec
        message.header.frame_id = "camera_color_optical_frame"
        return message

    try:
        wait_for_output(process, "fusing the verdicts", timeout=60)
        peer.wait_for_subscribers([colour, geometry], process=process)
        peer.wait_for_publishers([SCORE_TOPIC], process=process)
        inspected, no_part = AnomalyScore.INSPECTED, AnomalyScore.NO_PART
        colour.publish(verdict(1, inspected, 0.2, "rgbd"))      # good in colour ...
        geometry.publish(verdict(1, inspected, 0.9, "height"))  # ... dented
        colour.publish(verdict(2, inspected, 0.3, "rgbd"))
        geometry.publish(verdict(2, inspected, 0.1, "height"))
        colour.publish(verdict(3, inspected, 0.1, "rgbd"))      # geometry never answers
        geometry.publish(verdict(4, no_part, 0.0, "height"))
        colour.publish(verdict(4, no_part, 0.0, "rgbd"))
        peer.wait_for(SCORE_TOPIC, 4, timeout=30, process=process)
        geometry.publish(verdict(3, inspected, 0.1, "height"))  # too late
        time.sleep(2.0)
        counters = diagnostics_values(peer, "verdict_fusion")
    finally:
        stop_process(process)
    by_stamp = {m.header.stamp.sec: m for m in fused}
    assert sorted(by_stamp) == [1, 2, 3, 4] and len(fused) == 4, [m.header.stamp for m in fused]
    assert by_stamp[1].status == inspected and by_stamp[1].is_anomaly
    assert by_stamp[1].model_name == "colour:rgbd+geometry:height"
    assert by_stamp[1].score == pytest.approx(math.log(9.0), rel=1e-5)
    assert by_stamp[2].status == inspected and not by_stamp[2].is_anomaly
    assert by_stamp[3].status == AnomalyScore.INVALID_INPUT and by_stamp[3].is_anomaly
    assert by_stamp[3].status_detail == "no verdict from geometry"
    assert by_stamp[4].status == no_part
    assert counters.get("incomplete") == "1" and counters.get("late") == "1", counters
