"""Single nodes in their own processes, driven over DDS: bad input, startup errors, replay."""

import time
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

    message = ModelInput(preprocessing_id=preprocessing_id)
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
        while not (peer.received["/anomaly_score"] and all_counted()):
            assert time.monotonic() < deadline, diagnostics_values(peer, "scorer")
            for message in bad_inputs + [good]:
                publisher.publish(message)
                time.sleep(0.4)
        assert process.poll() is None, "the scorer must keep running"
    finally:
        output = stop_process(process)
    assert "expects" in output and "does not match" in output and "no_such_encoding" in output
    assert peer.received["/anomaly_score"][0].header.frame_id == "camera_color_optical_frame"


def test_preprocess_skips_bad_frames_and_keeps_running(small_checkpoint, ros_env, peer):
    from sensor_msgs.msg import CameraInfo, Image

    from gan_anomaly_ros.msg import ModelInput
    from gan_anomaly_ros.ros.image_conversion import numpy_to_image
    from gan_anomaly_ros.ros.qos import RELIABLE_OUT

    peer.listen(ModelInput, "/gan_anomaly/model_input")
    pubs = {name: peer.node.create_publisher(kind, topic, RELIABLE_OUT) for name, kind, topic in [
        ("color", Image, "/camera/camera/color/image_raw"),
        ("depth", Image, "/camera/camera/aligned_depth_to_color/image_raw"),
        ("info", CameraInfo, "/camera/camera/color/camera_info")]}
    process = start_node(preprocess_node(str(small_checkpoint)), ros_env)

    def send(color_array, encoding, depth_shape=(120, 160)):
        stamp = peer.node.get_clock().now().to_msg()
        color = numpy_to_image(color_array, encoding)
        depth = numpy_to_image(np.full(depth_shape, 500, np.uint16), "16UC1")
        info = CameraInfo(width=160, height=120)
        for message in (color, depth, info):
            message.header.stamp = stamp
            message.header.frame_id = "camera_color_optical_frame"
        pubs["color"].publish(color)
        pubs["depth"].publish(depth)
        pubs["info"].publish(info)

    try:
        wait_for_output(process, "preprocessing rgbd", timeout=90)
        peer.wait_for_subscribers(pubs.values(), process=process)
        deadline = time.monotonic() + 90

        def both_errors_logged():
            output = read_output(process)
            return "32FC1" in output and "not aligned" in output

        # Repeat until every kind was seen: a reliable publisher may still drop a frame sent
        # while the subscription's reader is matching (the flake this replaced).
        while not (peer.received["/gan_anomaly/model_input"] and both_errors_logged()):
            assert time.monotonic() < deadline, "no model input and both errors after bad frames"
            send(np.zeros((120, 160), np.float32), "32FC1")              # not a colour image
            time.sleep(0.2)
            send(np.zeros((120, 160, 3), np.uint8), "rgb8", (60, 80))    # depth not aligned
            time.sleep(0.2)
            send(np.zeros((120, 160, 3), np.uint8), "bgr8")              # fine
            time.sleep(0.3)
        assert process.poll() is None
    finally:
        output = stop_process(process)
    message = peer.received["/gan_anomaly/model_input"][0]
    assert message.input.encoding == "32FC4" and message.input.width == 64
    assert message.color.encoding == "rgb8"
    assert message.preprocessing_id == read_preprocessing(small_checkpoint).fingerprint()
    assert "32FC1" in output and "not aligned" in output
    # The colour frame arrived as bgr8 and was converted, not passed through.
    assert message.color.data.tobytes() == bytes(120 * 160 * 3)


@pytest.mark.parametrize("model,reason", [("/nonexistent/model.safetensors", "does not exist"),
                                          ("", "does not exist")])
def test_scorer_refuses_to_start_without_a_usable_checkpoint(model, reason, ros_env, tmp_path):
    spec = scorer_node(model or str(tmp_path / "missing.safetensors"), "cpu")
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
