"""Record the camera topics for offline training: colour, aligned depth and camera_info to
MCAP bags with a label (recorder_node; see README, "Recording and training from bags").

    ros2 launch gan_anomaly_ros record.launch.py label:=good output_dir:=bags/line1
    ros2 launch gan_anomaly_ros record.launch.py camera:=replay label:=defective

`ros2 param set /recorder label defective` switches the label (and the bag) while recording.
Without our recorder: `ros2 bag record -s mcap <the three camera topics>` (no labels).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from gan_anomaly_ros.graph import (CAMERAS, dds_environment, realsense_include, recorder_node,
                                   replay_camera_node)

ARGUMENTS = [
    ("camera", "realsense", "camera source: realsense or replay", CAMERAS),
    ("output_dir", "bags", "folder for the bags", None),
    ("label", "unlabeled", "good | defective | unlabeled", ("good", "defective", "unlabeled")),
    ("only_with_part", "false", "keep only frames with a part found", ("true", "false")),
    ("split_duration_s", "0.0", "start a new bag after this many seconds; 0: never", None),
]


def _node(spec):
    return Node(package=spec.package, executable=spec.executable, name=spec.name,
                namespace=spec.namespace or None, parameters=[dict(spec.parameters)],
                remappings=list(spec.remappings), output="screen", emulate_tty=True)


def _actions(context):
    value = {name: LaunchConfiguration(name).perform(context) for name, *_ in ARGUMENTS}
    recorder = recorder_node(output_dir=value["output_dir"], label=value["label"],
                             only_with_part=value["only_with_part"] == "true",
                             split_duration_s=float(value["split_duration_s"]))
    # The camera's images through shared memory, as in the inspection graph.
    environment = [SetEnvironmentVariable(name, text) for name, text in dds_environment().items()]
    if value["camera"] == "replay":
        return environment + [_node(replay_camera_node()), _node(recorder)]
    # The camera include is the inspection graph's own (one definition of the camera).
    import importlib.util
    import os
    spec = importlib.util.spec_from_file_location(
        "inspect_launch", os.path.join(os.path.dirname(__file__), "inspect.launch.py"))
    inspect_launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(inspect_launch)
    return environment + [inspect_launch._include(realsense_include()), _node(recorder)]


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=text,
                                      **({"choices": list(choices)} if choices else {}))
                for name, default, text, choices in ARGUMENTS]
    return LaunchDescription(declared + [OpaqueFunction(function=_actions)])
