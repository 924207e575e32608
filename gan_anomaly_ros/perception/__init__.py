"""Perception: from a camera frame (colour + aligned depth + intrinsics) to what a model sees.

geometry.py (pinhole back-projection), preprocessing.py (the one frame -> model input
conversion shared by training and the live nodes). ROS-free.
"""
