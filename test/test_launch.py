"""launch/inspect.launch.py, wherever the `launch` and `launch_ros` packages are importable.

They are part of every real ROS 2 install but not on PyPI, so on our machines these tests
skip; `gan-anomaly bringup` (tested in test_graph_dds.py) starts the same graph there.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

# launch.actions, not launch: the repository's own launch/ folder imports as a namespace
# package named `launch` when the real one is missing.
pytest.importorskip("launch.actions", reason="the ROS 2 `launch` package is not installed")
pytest.importorskip("launch_ros", reason="the ROS 2 `launch_ros` package is not installed")

from launch import LaunchContext  # noqa: E402
from launch.actions import (DeclareLaunchArgument, OpaqueFunction,  # noqa: E402
                            SetEnvironmentVariable)

from gan_anomaly_ros.graph import dds_environment, inspection_graph  # noqa: E402
from process_helpers import start_process, stop_process, wait_process  # noqa: E402
from ros_peer import Peer  # noqa: E402

LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "inspect.launch.py"


def load_launch_module():
    spec = importlib.util.spec_from_file_location("inspect_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expand(arguments):
    """The actions the launch file produces for the given arguments."""
    description = load_launch_module().generate_launch_description()
    context = LaunchContext()
    declared = [e for e in description.entities if isinstance(e, DeclareLaunchArgument)]
    for entity in declared:
        default = "".join(s.perform(context) for s in entity.default_value)
        context.launch_configurations[entity.name] = arguments.get(entity.name, default)
    opaque = next(e for e in description.entities if isinstance(e, OpaqueFunction))
    return {e.name for e in declared}, opaque.execute(context)


def started(actions):
    """The actions that start something (not the environment settings before them)."""
    return [a for a in actions if not isinstance(a, SetEnvironmentVariable)]


def environment(actions):
    context = LaunchContext()
    perform = lambda subs: "".join(sub.perform(context) for sub in subs)  # noqa: E731
    return {perform(a.name): perform(a.value) for a in actions
            if isinstance(a, SetEnvironmentVariable)}


def test_launch_arguments_and_replay_nodes_match_the_graph():
    names, actions = expand({"camera": "replay", "model": "/m.safetensors", "device": "cpu"})
    assert {"camera", "model", "device"} <= names
    graph = inspection_graph(camera="replay", model="/m.safetensors", device="cpu",
                             replay={"source": "synthetic", "rate": 5.0})
    assert [a.node_executable for a in started(actions)] == [n.executable for n in graph.nodes]
    assert all(a.node_package == "gan_anomaly_ros" for a in started(actions))
    # The DDS settings (config/fastdds_large_data.xml) come first, for every process.
    assert environment(actions) == graph.environment == dds_environment()
    assert started(actions[:len(graph.environment)]) == []


def test_realsense_camera_includes_rs_launch_with_aligned_depth():
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        get_package_share_directory("realsense2_camera")
    except PackageNotFoundError:
        pytest.skip("realsense2_camera is not installed")
    _, actions = expand({"camera": "realsense"})
    actions = started(actions)
    include = actions[0]
    context = LaunchContext()
    perform = lambda subs: "".join(sub.perform(context) for sub in subs)  # noqa: E731
    arguments = {perform(k): perform(v) for k, v in include.launch_arguments}
    assert arguments["align_depth.enable"] == "true"
    assert str(include.launch_description_source.location).endswith("rs_launch.py")
    assert [a.node_executable for a in actions[1:]] == ["preprocess_node", "scorer_node"]


@pytest.mark.requires_ros
@pytest.mark.parametrize("extra", [[], ["composed:=true", "camera_queue:=1"]],
                         ids=["separate", "composed"])
def test_launch_file_runs_the_pipeline(small_checkpoint, ros_env, extra):
    from gan_anomaly_ros.msg import AnomalyScore
    from gan_anomaly_ros.ros.qos import RELIABLE_OUT

    runner = Path(__file__).parent / "dds_peers" / "launch_runner.py"
    peer = Peer("launch_test_listener")
    peer.listen(AnomalyScore, "/anomaly_score", RELIABLE_OUT)
    process = start_process([sys.executable, runner, LAUNCH_FILE, "camera:=replay",
                             f"model:={small_checkpoint}", "device:=cpu", "rate:=4.0",
                             *extra],
                            env=ros_env)
    try:
        peer.wait_for("/anomaly_score", count=3, timeout=120, process=process)
    finally:
        output = stop_process(process, timeout=20)
        peer.close()
    assert process.returncode == 0, output


def test_without_the_realsense_driver_the_error_says_what_to_do():
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        get_package_share_directory("realsense2_camera")
        pytest.skip("realsense2_camera is installed here")
    except PackageNotFoundError:
        pass
    with pytest.raises(RuntimeError, match="apt install ros-.*realsense2-camera.*camera:=replay"):
        expand({"camera": "realsense"})


def test_rviz_and_record_arguments_add_their_nodes():
    _, actions = expand({"camera": "replay", "model": "/m.safetensors", "rviz": "true",
                         "record": "true"})
    assert [a.node_executable for a in actions[-2:]] == ["rviz2", "recorder_node"]
    _, actions = expand({"camera": "replay", "model": "/m.safetensors"})
    assert "rviz2" not in [a.node_executable for a in started(actions)]


@pytest.mark.requires_ros
def test_a_required_node_exiting_stops_the_launch_saying_which(ros_env, tmp_path):
    runner = Path(__file__).parent / "dds_peers" / "launch_runner.py"
    process = start_process([sys.executable, runner, LAUNCH_FILE, "camera:=replay",
                             f"model:={tmp_path / 'missing.safetensors'}", "device:=cpu"],
                            env=ros_env)
    output = wait_process(process, timeout=90)
    assert "required node" in output and "exited with code 2" in output
    assert output.count("required node") == 1, "only the node that failed is named"
    assert process.returncode != 0, "a failed inspection must not exit 0"


def test_record_launch_records_the_camera_with_a_label():
    spec = importlib.util.spec_from_file_location(
        "record_launch", LAUNCH_FILE.parent / "record.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    context = LaunchContext()
    for entity in description.entities:
        if isinstance(entity, DeclareLaunchArgument):
            default = "".join(s.perform(context) for s in entity.default_value)
            context.launch_configurations[entity.name] = {"camera": "replay", "label": "good"}.get(
                entity.name, default)
    opaque = next(e for e in description.entities if isinstance(e, OpaqueFunction))
    actions = opaque.execute(context)
    assert [a.node_executable for a in started(actions)] == ["replay_camera_node",
                                                             "recorder_node"]
    assert environment(actions) == dds_environment()
