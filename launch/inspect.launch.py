"""Inspection pipeline: camera -> preprocess -> scorer, publishing /anomaly_score.

    ros2 launch gan_anomaly_ros inspect.launch.py                  # RealSense camera
    ros2 launch gan_anomaly_ros inspect.launch.py camera:=replay   # synthetic scenes, no camera
    ros2 launch gan_anomaly_ros inspect.launch.py model:=/path/to/model.safetensors device:=cuda
    ros2 launch gan_anomaly_ros inspect.launch.py camera:=replay rviz:=true threshold:=0.8

The nodes come from gan_anomaly_ros.graph, which `gan-anomaly bringup` uses too.
"""

import os

from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction,
                            SetEnvironmentVariable)
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from gan_anomaly_ros.graph import (CAMERAS, CameraSettings, default_model_path,
                                   inspection_graph, recorder_node)

ARGUMENTS = [
    ("camera", "realsense", "camera source: realsense (realsense2_camera) or replay", CAMERAS),
    ("model", "", f"checkpoint (.safetensors); empty: {default_model_path()}", None),
    ("geometry_model", "", "a second checkpoint (trained with --mode height, or voxels) scoring "
     "the same frames; /anomaly_score then carries both models' fused verdict", None),
    ("device", "auto", "inference device: auto, cpu or cuda", None),
    ("source", "synthetic", "replay source: synthetic or an MVTec-layout folder", None),
    ("rate", "5.0", "replay rate in Hz", None),
    ("threshold", "", "decision threshold in score units; empty: the checkpoint's calibrated "
     "one (changeable at run time: ros2 param set /scorer threshold X)", None),
    ("rviz", "false", "start rviz2 with config/inspect.rviz", ("true", "false")),
    ("camera_namespace", "camera", "RealSense: namespace of its topics", None),
    ("camera_name", "camera", "RealSense: name (topics /<namespace>/<name>/...)", None),
    ("serial_no", "", "RealSense: serial number of the camera to use (empty: any)", None),
    ("color_profile", "", "RealSense: colour width,height,fps, e.g. 640,480,30", None),
    ("depth_profile", "", "RealSense: depth width,height,fps, e.g. 640,480,30", None),
    ("secure", "false", "run every node with its SROS2 enclave /gan_anomaly/<node> (needs "
     "ROS_SECURITY_ENABLE=true and a keystore from config/sros2/policy.xml)", ("true", "false")),
    ("record", "false", "also record the camera to MCAP bags in ./bags (record.launch.py has "
     "the recorder's other settings)", ("true", "false")),
    ("runtime", "eager", "scorer runtime: eager (torch), torchscript or onnxruntime (the last "
     "two need exported_model)", ("eager", "torchscript", "onnxruntime")),
    ("exported_model", "", "the file `gan-anomaly export` wrote, for runtime torchscript or "
     "onnxruntime", None),
    ("camera_queue", "5", "frames kept per camera topic while preprocess is busy; 1: newest "
     "only (lowest latency on a machine too slow for the camera rate)", None),
    ("composed", "false", "preprocess and scorer in one process (the model input is handed "
     "over in memory, not through DDS; README, \"Real time\")", ("true", "false")),
]


def _include(include):
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        share = get_package_share_directory(include.package)
    except PackageNotFoundError:
        raise RuntimeError(
            f"package '{include.package}' not found: install the RealSense ROS driver "
            "(sudo apt install ros-$ROS_DISTRO-realsense2-camera), or run without a camera: "
            "camera:=replay") from None
    path = os.path.join(share, "launch", include.launch_file)
    return IncludeLaunchDescription(PythonLaunchDescriptionSource(path),
                                    launch_arguments=list(include.arguments.items()))


def _required_exit(name):
    """Every node of the graph is required: without preprocess or scorer nothing is inspected.
    The first node that fails stops the launch, saying which (its own output above says
    why), and `ros2 launch` exits non-zero, for scripts and systemd. Clean exits (Ctrl-C
    reaches the nodes too) and exits during the shutdown say nothing."""
    def on_exit(event, context):
        if context.is_shutdown or event.returncode == 0:
            return None
        raise RuntimeError(f"required node '{name}' exited with code {event.returncode}; "
                           "stopping the inspection")  # launch logs it, stops, exits 1
    return on_exit


def _node(spec):
    # A composed process holds several nodes with their own names: no name to force on it.
    return Node(package=spec.package, executable=spec.executable,
                name=None if spec.composed else spec.name,
                namespace=spec.namespace or None, parameters=[dict(spec.parameters)],
                remappings=list(spec.remappings), output="screen", emulate_tty=True,
                ros_arguments=["--enclave", spec.enclave] if spec.enclave else None,
                on_exit=_required_exit(spec.name))


def _graph_actions(context):
    value = {name: LaunchConfiguration(name).perform(context) for name, *_ in ARGUMENTS}
    graph = inspection_graph(camera=value["camera"], model=value["model"],
                             device=value["device"],
                             replay={"source": value["source"], "rate": float(value["rate"])},
                             threshold=float(value["threshold"]) if value["threshold"] else None,
                             realsense=CameraSettings(
                                 value["camera_namespace"], value["camera_name"],
                                 value["serial_no"], value["color_profile"],
                                 value["depth_profile"]),
                             secure=value["secure"] == "true",
                             composed=value["composed"] == "true",
                             runtime=value["runtime"], exported_model=value["exported_model"],
                             camera_queue=int(value["camera_queue"]),
                             geometry_model=value["geometry_model"])
    # First, so that the camera driver and every node start with it (graph.dds_environment).
    actions = [SetEnvironmentVariable(name, value) for name, value in graph.environment.items()]
    actions += [_include(include) for include in graph.includes] + [_node(n) for n in graph.nodes]
    if value["rviz"] == "true":
        actions.append(_rviz())
    if value["record"] == "true":
        actions.append(_node(recorder_node(output_dir="bags")))
    return actions


def _rviz():
    from ament_index_python.packages import get_package_share_directory

    config = os.path.join(get_package_share_directory("gan_anomaly_ros"), "config",
                          "inspect.rviz")
    return Node(package="rviz2", executable="rviz2", name="rviz", arguments=["-d", config],
                output="screen")


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=text,
                                      **({"choices": list(choices)} if choices else {}))
                for name, default, text, choices in ARGUMENTS]
    return LaunchDescription(declared + [OpaqueFunction(function=_graph_actions)])
