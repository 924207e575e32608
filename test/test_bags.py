"""Recording bags and training from them: the recorder node across processes, real MCAP and
sqlite3 rosbag2 files, export-bag and train --bag through the same perception code."""

import json
import signal
import time

import numpy as np
import pytest

from gan_anomaly_ros.cli import main as gan_anomaly
from gan_anomaly_ros.data.bags import BagError, bag_label, read_bag_frames
from gan_anomaly_ros.data.synthetic import render_scene
from gan_anomaly_ros.perception.geometry import D435_COLOR_640X480

INTRINSICS = D435_COLOR_640X480.scaled(320, 240)
TOPICS = ("/camera/camera/color/image_raw", "/camera/camera/aligned_depth_to_color/image_raw",
          "/camera/camera/color/camera_info")


def write_bag_like_ros2_bag_record(path, frames, storage="sqlite3", label=None):
    """A bag as `ros2 bag record` writes it (rosbags' own serialisation, no rclpy); with
    ``label``, stored in the metadata as our recorder does."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    Image, CameraInfo = store.types["sensor_msgs/msg/Image"], store.types["sensor_msgs/msg/CameraInfo"]
    Header, Time = store.types["std_msgs/msg/Header"], store.types["builtin_interfaces/msg/Time"]
    RegionOfInterest = store.types["sensor_msgs/msg/RegionOfInterest"]
    plugin = StoragePlugin.SQLITE3 if storage == "sqlite3" else StoragePlugin.MCAP
    writer = Writer(path, version=9, storage_plugin=plugin)
    if label:
        writer.set_custom_data("label", label)
    with writer:
        kinds = ("sensor_msgs/msg/Image", "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo")
        connections = [writer.add_connection(t, k, typestore=store) for t, k in zip(TOPICS, kinds)]
        for i, frame in enumerate(frames):
            header = Header(stamp=Time(sec=100 + i, nanosec=0),
                            frame_id="camera_color_optical_frame")
            h, w = frame.depth_mm.shape
            colour = Image(header=header, height=h, width=w, encoding="rgb8", is_bigendian=0,
                           step=3 * w, data=frame.color.reshape(-1))
            depth = Image(header=header, height=h, width=w, encoding="16UC1", is_bigendian=0,
                          step=2 * w, data=frame.depth_mm.astype("<u2").view(np.uint8).reshape(-1))
            info = CameraInfo(header=header, height=h, width=w, distortion_model="plumb_bob",
                              d=np.zeros(5), k=INTRINSICS.K.ravel(), r=np.eye(3).ravel(),
                              p=np.zeros(12), binning_x=0, binning_y=0,
                              roi=RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0,
                                                   do_rectify=False))
            t = (100 + i) * 1_000_000_000
            for connection, message in zip(connections, (info, depth, colour)[::-1]):
                writer.write(connection, t, store.serialize_cdr(message, connection.msgtype))


@pytest.fixture(scope="module")
def scenes():
    return [render_scene(50 + i, intrinsics=INTRINSICS) for i in range(12)]


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_bags_recorded_by_ros2_bag_record_read_as_frames(scenes, tmp_path, storage):
    write_bag_like_ros2_bag_record(tmp_path / "bag", scenes[:3], storage)
    frames = list(read_bag_frames([tmp_path / "bag"]))
    assert len(frames) == 3
    assert np.array_equal(frames[1].rgb, scenes[1].color)
    np.testing.assert_allclose(frames[1].depth_m, scenes[1].depth_m, atol=1e-6)
    assert frames[0].intrinsics == INTRINSICS and bag_label(tmp_path / "bag") is None
    with pytest.raises(BagError, match="no .*color"):
        list(read_bag_frames([tmp_path / "bag"], color_topic="/color"))


def test_export_bag_and_train_from_bags(scenes, tmp_path, capsys):
    write_bag_like_ros2_bag_record(tmp_path / "bag", scenes)
    out = tmp_path / "data"
    assert gan_anomaly(["export-bag", str(tmp_path / "bag"), "--out", str(out)]) == 2
    assert "--label good" in capsys.readouterr().err    # unlabeled bags are refused
    assert gan_anomaly(["export-bag", str(tmp_path / "bag"), "--out", str(out),
                        "--label", "good"]) == 0
    assert json.loads(capsys.readouterr().out)["frames"] == {"good": len(scenes)}
    assert len(list((out / "train" / "good" / "rgb").glob("*.png"))) == len(scenes)
    assert json.loads((out / "camera_info.json").read_text())["fx"] == INTRINSICS.fx
    model = tmp_path / "m.safetensors"
    assert gan_anomaly(["train", "--bag", str(tmp_path / "bag"), "--label", "good", "--out",
                        str(model), "--model", "ganomaly", "--mode", "rgbd", "--size", "32",
                        "--epochs", "1", "--batch-size", "4", "--hparam", "base_width=8",
                        "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["preprocessing"]["crop_mode"] == "part"   # RGB-D from a bag: part crops
    # eval --bag: good and defective bags (labelled as our recorder labels them) as a test split.
    defective = [render_scene(70 + i, "hole", intrinsics=INTRINSICS) for i in range(4)]
    write_bag_like_ros2_bag_record(tmp_path / "good", scenes[:6], label="good")
    write_bag_like_ros2_bag_record(tmp_path / "bad", defective, label="defective")
    capsys.readouterr()
    assert gan_anomaly(["eval", "--model", str(model), "--bag", str(tmp_path / "good"),
                        str(tmp_path / "bad"), "--device", "cpu", "--out",
                        str(tmp_path / "eval")]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["per_type"]["defective"]["n"] == len(defective)
    assert metrics["n_images"] == 6 + len(defective)


def call_set_label(peer, label: str) -> bool:
    from gan_anomaly_ros.srv import SetLabel

    client = peer.node.create_client(SetLabel, "/recorder/set_label")
    assert client.wait_for_service(timeout_sec=30), "no /recorder/set_label service"
    future = client.call_async(SetLabel.Request(label=label))
    deadline = time.monotonic() + 30
    while not future.done():
        assert time.monotonic() < deadline, "no answer from /recorder/set_label"
        time.sleep(0.05)
    peer.node.destroy_client(client)
    return future.result().success


@pytest.mark.requires_ros
def test_the_recorder_keeps_every_frame_until_sigterm_and_splits_by_label(scenes, ros_env,
                                                                          tmp_path):
    from gan_anomaly_ros.graph import recorder_node, ros_arguments
    from process_helpers import start_module, stop_process, wait_for_output
    from ros_peer import Peer
    from test_nodes import camera_publishers, send_frame

    peer = Peer("recorder_test")
    pubs = camera_publishers(peer)
    spec = recorder_node(output_dir=str(tmp_path / "bags"), label="good")
    process = start_module(spec.module, *ros_arguments(spec), env=ros_env)
    sent = {"good": 0, "defective": 0}
    try:
        wait_for_output(process, "recording to", timeout=60)
        peer.wait_for_subscribers(pubs.values(), process=process)
        for i, scene in enumerate(scenes):
            if i == 8:  # the operator panel's way: the ~/set_label service
                assert call_set_label(peer, "defective")
            send_frame(peer, pubs, scene.color, "rgb8", scene.depth_mm, "16UC1", INTRINSICS)
            sent["good" if i < 8 else "defective"] += 1
            time.sleep(0.15)
        time.sleep(1.0)
        process.send_signal(signal.SIGTERM)      # what systemd and docker stop send
        process.wait(timeout=30)
    finally:
        stop_process(process)
        peer.close()
    bags = sorted((tmp_path / "bags").iterdir())
    assert [bag_label(b) for b in bags] == ["good", "defective"]
    counts = {bag_label(b): len(list(read_bag_frames([b]))) for b in bags}
    assert counts == sent, "every frame received before the signal is in a readable bag"
    frame = next(read_bag_frames([bags[0]]))
    assert np.array_equal(frame.rgb, scenes[0].color) and frame.intrinsics == INTRINSICS


@pytest.mark.requires_ros
def test_the_replay_camera_plays_a_bag_at_its_recorded_rate(scenes, ros_env, tmp_path):
    from sensor_msgs.msg import CameraInfo, Image

    from gan_anomaly_ros.graph import DEFECT_MASK_TOPIC, replay_camera_node, ros_arguments
    from gan_anomaly_ros.ros.qos import RELIABLE_OUT
    from process_helpers import start_module, stop_process, wait_for_output
    from ros_peer import Peer

    write_bag_like_ros2_bag_record(tmp_path / "bag", scenes[:4], "mcap")  # 1 frame per second
    peer = Peer("bag_replay_test")
    colours = peer.listen(Image, TOPICS[0], RELIABLE_OUT)
    for topic in TOPICS[1:2] + (DEFECT_MASK_TOPIC,):  # wait_for_subscribers counts every topic
        peer.listen(Image, topic, RELIABLE_OUT)
    peer.listen(CameraInfo, TOPICS[2], RELIABLE_OUT)
    spec = replay_camera_node(source=str(tmp_path / "bag"), loop=False, wait_for_subscribers=1)
    process = start_module(spec.module, *ros_arguments(spec), env=ros_env)
    try:
        output = wait_for_output(process, "replaying", timeout=60)
        peer.wait_for(TOPICS[0], 4, timeout=30, process=process)
    finally:
        stop_process(process)
        peer.close()
    assert "replaying 4 frames" in output and "at 1 Hz" in output
    assert np.array_equal(np.frombuffer(bytes(colours[2].data), np.uint8).reshape(240, 320, 3),
                          scenes[2].color)


@pytest.mark.requires_ros
def test_sigterm_while_frames_arrive_leaves_a_readable_bag_with_all_it_wrote(scenes, ros_env,
                                                                              tmp_path):
    """The recorder killed (SIGTERM) mid-recording: the bag opens and holds every frame the
    recorder had written, which is every frame it received before the signal."""
    import re
    import threading

    from gan_anomaly_ros.graph import recorder_node, ros_arguments
    from pathlib import Path

    from process_helpers import read_output, start_module, stop_process, wait_for_output
    from ros_peer import Peer
    from test_nodes import camera_publishers, send_frame

    peer = Peer("recorder_sigterm_test")
    pubs = camera_publishers(peer)
    # ~0.4 MB per 320x240 frame set: a new bag every few frames.
    spec = recorder_node(output_dir=str(tmp_path / "bags"), label="good", split_size_mb=1.0)
    process = start_module(spec.module, *ros_arguments(spec), env=ros_env)
    stop = threading.Event()
    streamer = None

    def stream():
        i = 0
        while not stop.is_set():
            scene = scenes[i % len(scenes)]
            send_frame(peer, pubs, scene.color, "rgb8", scene.depth_mm, "16UC1", INTRINSICS)
            i += 1
            time.sleep(0.05)

    try:
        wait_for_output(process, "recording to", timeout=60)
        peer.wait_for_subscribers(pubs.values(), process=process)
        streamer = threading.Thread(target=stream)
        streamer.start()
        wait_for_output(process, "new bag", timeout=30)
        time.sleep(2.0)
        process.send_signal(signal.SIGTERM)          # frames still arriving
        process.wait(timeout=30)
        output = read_output(process)
    finally:
        stop.set()
        if streamer is not None:
            streamer.join()
        stop_process(process)
        peer.close()
    written = {Path(path).name: int(n) for path, n in
               re.findall(r"closed (\S+) \((\d+) frames\)", output)}
    bags = sorted((tmp_path / "bags").iterdir())
    assert len(bags) >= 3 and sum(written.values()) >= 5, output   # split by size
    for bag in bags:
        assert len(list(read_bag_frames([bag]))) == written[bag.name]
        size = sum(f.stat().st_size for f in bag.glob("*.mcap"))
        # Split at about 1 MB; the last bag, cut by the signal, may be smaller.
        assert size < 2.5e6 and (bag == bags[-1] or size > 0.5e6), (bag.name, size)
