"""Inspection pipeline: camera -> preprocess -> scorer, publishing /anomaly_score.

    ros2 launch gan_anomaly_ros inspect.launch.py                  # RealSense camera
    ros2 launch gan_anomaly_ros inspect.launch.py camera:=replay   # synthetic scenes, no camera
    ros2 launch gan_anomaly_ros inspect.launch.py model:=/path/to/model.safetensors device:=cuda

The nodes come from gan_anomaly_ros.graph, which `gan-anomaly bringup` uses too.
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from gan_anomaly_ros.graph import CAMERAS, default_model_path, inspection_graph

ARGUMENTS = [
    ("camera", "realsense", "camera source: realsense (realsense2_camera) or replay", CAMERAS),
    ("model", "", f"checkpoint (.safetensors); empty: {default_model_path()}", None),
    ("device", "auto", "inference device: auto, cpu or cuda", None),
    ("source", "synthetic", "replay source: synthetic or an MVTec-layout folder", None),
    ("rate", "5.0", "replay rate in Hz", None),
]


def _include(include):
    from ament_index_python.packages import get_package_share_directory

    path = os.path.join(get_package_share_directory(include.package), "launch",
                        include.launch_file)
    return IncludeLaunchDescription(PythonLaunchDescriptionSource(path),
                                    launch_arguments=list(include.arguments.items()))


def _node(spec):
    return Node(package=spec.package, executable=spec.executable, name=spec.name,
                namespace=spec.namespace or None, parameters=[dict(spec.parameters)],
                remappings=list(spec.remappings), output="screen", emulate_tty=True)


def _graph_actions(context):
    value = {name: LaunchConfiguration(name).perform(context) for name, *_ in ARGUMENTS}
    graph = inspection_graph(camera=value["camera"], model=value["model"],
                             device=value["device"],
                             replay={"source": value["source"], "rate": float(value["rate"])})
    return [_include(include) for include in graph.includes] + [_node(n) for n in graph.nodes]


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=text,
                                      **({"choices": list(choices)} if choices else {}))
                for name, default, text, choices in ARGUMENTS]
    return LaunchDescription(declared + [OpaqueFunction(function=_graph_actions)])
