"""sensor_msgs/CameraInfo -> the ROS-free CameraIntrinsics."""

from __future__ import annotations

from typing import Optional

from ..perception.geometry import CameraIntrinsics


def intrinsics_from_camera_info(info, width: int, height: int) -> Optional[CameraIntrinsics]:
    """The pinhole intrinsics of K, for an image of width x height; None when the message
    carries no calibration (K all zero, as an uncalibrated driver sends). Aligned depth uses
    the colour camera's K, which is what realsense-ros publishes with the aligned topic."""
    fx, cx, fy, cy = info.k[0], info.k[2], info.k[4], info.k[5]
    if not (fx > 0 and fy > 0):
        return None
    return CameraIntrinsics(width=width, height=height, fx=fx, fy=fy, cx=cx, cy=cy)
