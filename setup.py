# The ROS-free core as a plain pip package (`pip install .`, e.g. on a GPU server without ROS).
# All settings live in setup.cfg. colcon ignores this file: package.xml says ament_cmake.
from setuptools import setup

setup()
