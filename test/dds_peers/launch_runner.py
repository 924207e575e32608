"""Runs a launch file the way `ros2 launch PKG FILE ARGS` does (ros2cli is not on PyPI).

    python launch_runner.py path/to/file.launch.py name:=value ...
"""

import sys

from launch import LaunchDescription, LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource


def main(argv):
    path, arguments = argv[0], [a.split(":=", 1) for a in argv[1:]]
    service = LaunchService(argv=argv[1:])
    service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(path), launch_arguments=[tuple(a) for a in arguments])]))
    return service.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
