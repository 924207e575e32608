"""The part as messages: pose and box fields, the part cloud, the anomaly cloud and the rviz
markers (ROS side of perception/part_finder.py)."""

from __future__ import annotations

from typing import Optional

import numpy as np
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from ..perception.geometry import rotation_to_quaternion
from ..perception.part_finder import PartObservation
from .point_cloud import cloud_array, cloud_message, float_dtype, pack_rgb

NAN_POINT = Point(x=float("nan"), y=float("nan"), z=float("nan"))
PART_CLOUD_FIELDS = ("x", "y", "z", "rgb", "u", "v")
ANOMALY_CLOUD_FIELDS = ("x", "y", "z", "rgb", "anomaly")
# Rviz shows the part box in these colours (RGBA): accepted green, rejected red.
GOOD_COLOUR = (0.1, 0.8, 0.2, 0.35)
ANOMALY_COLOUR = (0.9, 0.1, 0.1, 0.45)
REGION_COLOUR = (1.0, 0.2, 0.0, 1.0)


def part_fields(part: Optional[PartObservation]) -> dict:
    """centroid, part_pose, part_size, valid_depth_fraction for ModelInput / AnomalyScore."""
    if part is None or part.centroid is None:
        return {"centroid": NAN_POINT, "part_pose": Pose(), "part_size": Vector3(),
                "valid_depth_fraction": float(part.valid_fraction) if part else 0.0}
    x, y, z = (float(v) for v in part.centroid)
    qx, qy, qz, qw = rotation_to_quaternion(part.rotation)
    return {"centroid": Point(x=x, y=y, z=z),
            "part_pose": Pose(position=Point(x=x, y=y, z=z),
                              orientation=Quaternion(x=qx, y=qy, z=qz, w=qw)),
            "part_size": Vector3(x=float(part.size[0]), y=float(part.size[1]),
                                 z=float(part.size[2])),
            "valid_depth_fraction": float(part.valid_fraction)}


def part_cloud(header, part: Optional[PartObservation], rgb: np.ndarray, max_points: int):
    """The part's points with colour and pixel coordinates, at most ``max_points`` (an even
    stride through them: enough for rviz and for the anomaly cloud, and a bounded message)."""
    if part is None or part.points is None:
        return cloud_message(header, np.zeros(0, float_dtype(PART_CLOUD_FIELDS)))
    rows, cols = part.pixels
    step = max(1, int(np.ceil(len(rows) / max(1, max_points))))
    rows, cols, xyz = rows[::step], cols[::step], part.points[::step]
    cloud = np.empty(len(rows), float_dtype(PART_CLOUD_FIELDS))
    cloud["x"], cloud["y"], cloud["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    cloud["rgb"] = pack_rgb(rgb[rows, cols])
    cloud["u"], cloud["v"] = cols, rows
    return cloud_message(header, cloud)


def anomaly_cloud(header, part_cloud_message, unit_map: np.ndarray, crop) -> tuple:
    """The part cloud with a field ``anomaly``: the 2D anomaly map (display units, 1 = twice the
    map threshold, see anomaly_map.display_scale) sampled at each point's pixel; 0 outside the
    crop. Returns (PointCloud2, the structured array)."""
    points = cloud_array(part_cloud_message)
    out = np.empty(len(points), float_dtype(ANOMALY_CLOUD_FIELDS))
    for name in ("x", "y", "z", "rgb"):
        out[name] = points[name]
    x0, y0, width, height = crop
    size = unit_map.shape[0]
    col = np.floor((points["u"] - x0) * size / width).astype(np.int64)
    row = np.floor((points["v"] - y0) * size / height).astype(np.int64)
    inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
    out["anomaly"] = 0.0
    out["anomaly"][inside] = unit_map[row[inside], col[inside]]
    return cloud_message(header, out), out


def _colour(rgba) -> ColorRGBA:
    return ColorRGBA(r=rgba[0], g=rgba[1], b=rgba[2], a=rgba[3])


def part_markers(header, score_message, cloud: Optional[np.ndarray] = None,
                 region_level: float = 0.5) -> MarkerArray:
    """Rviz markers for one verdict: the part box coloured by verdict (id 0) and the points
    whose anomaly reaches ``region_level`` (display units; 0.5 = the map threshold) as the
    anomalous region (id 1). Frames that were not inspected clear the markers."""
    if score_message.status != score_message.INSPECTED or \
            not np.isfinite(score_message.centroid.x):
        return MarkerArray(markers=[Marker(header=header, action=Marker.DELETEALL)])
    box = Marker(header=header, ns="part", id=0, type=Marker.CUBE, action=Marker.ADD,
                 pose=score_message.part_pose, scale=score_message.part_size,
                 color=_colour(ANOMALY_COLOUR if score_message.is_anomaly else GOOD_COLOUR))
    region = Marker(header=header, ns="anomalous_region", id=1, type=Marker.POINTS,
                    action=Marker.ADD, color=_colour(REGION_COLOUR))
    region.pose.orientation.w = 1.0
    region.scale = Vector3(x=0.002, y=0.002, z=0.002)
    if cloud is not None and score_message.is_anomaly:
        hot = cloud[cloud["anomaly"] >= region_level]
        region.points = [Point(x=float(p["x"]), y=float(p["y"]), z=float(p["z"]))
                         for p in hot[::max(1, len(hot) // 2000)]]
    return MarkerArray(markers=[box, region])


def voxel_grid_message(header, part: PartObservation, grid: np.ndarray, kind: str,
                       height_range_m: float = 0.008):
    """VoxelGrid of an inspected part: the grid's centre and axes are the part's box."""
    from array import array

    from gan_anomaly_ros.msg import VoxelGrid

    from ..perception.part_voxels import voxel_sizes

    fields = part_fields(part)
    resolution = int(grid.shape[-1])
    data = array("f")
    data.frombytes(np.ascontiguousarray(grid, "<f4").tobytes())
    side, height = voxel_sizes(part, resolution, kind, height_range_m)
    return VoxelGrid(header=header, pose=fields["part_pose"], resolution=resolution,
                     voxel_size=side, voxel_height=height, kind=kind, data=data)


def voxel_grid_array(message) -> np.ndarray:
    """VoxelGrid -> 1 x R x R x R float32 model input (the layout voxels.py documents)."""
    r = int(message.resolution)
    values = np.asarray(message.data, np.float32)
    if r < 1 or values.size != r ** 3:
        raise ValueError(f"voxel grid of resolution {r} has {values.size} values, not {r ** 3}")
    return values.reshape(1, r, r, r)


def points_in_frame(points: np.ndarray, pose) -> np.ndarray:
    """A cloud array's points (N x 3, metres) in the frame of ``pose`` (the part's box, or
    the voxel grid's)."""
    from ..perception.geometry import quaternion_to_rotation

    rotation = quaternion_to_rotation(pose.orientation.x, pose.orientation.y,
                                      pose.orientation.z, pose.orientation.w)
    centre = np.array([pose.position.x, pose.position.y, pose.position.z])
    xyz = np.stack([points["x"], points["y"], points["z"]], 1).astype(np.float64)
    return (xyz - centre) @ rotation


def part_map_on_image(message, anomaly_map: np.ndarray, crop,
                      projection: str = "cartesian") -> np.ndarray:
    """A map model's map (height or part colour: S x S in the part's box frame, square or
    polar cells as ``projection`` says, perception/part_heights.py) -> the same values as an
    S x S map over the image ``crop``, through the part cloud of a ModelInput: each point
    takes its map cell's value at its pixel. The 2D path (overlay, anomaly cloud, region) then works as for any image model."""
    from ..anomaly_map import points_to_crop_map
    from ..perception.part_heights import map_cells, part_map_extent

    points = cloud_array(message.part_cloud)
    size = anomaly_map.shape[0]
    extent = part_map_extent((message.part_size.x, message.part_size.y))
    cells = map_cells(points_in_frame(points, message.part_pose)[:, :2], extent, size,
                      projection)
    return points_to_crop_map(anomaly_map.ravel()[cells], points["u"], points["v"], crop, size)


def voxel_anomaly_cloud(header, part_cloud_message, voxel_message, unit_map: np.ndarray):
    """The part cloud with ``anomaly`` from a voxel model's R^3 map: each point's value is that
    of the voxel it falls in (points moved into the grid's frame with the grid's pose)."""
    points = cloud_array(part_cloud_message)
    out = np.empty(len(points), float_dtype(ANOMALY_CLOUD_FIELDS))
    for name in ("x", "y", "z", "rgb"):
        out[name] = points[name]
    local = points_in_frame(points, voxel_message.pose)
    r = int(voxel_message.resolution)
    if voxel_message.kind == "relative_height":
        # Levels are heights about the top face, not the box's z: a point takes its column's
        # largest value (the map of a height field is a map per column).
        columns = np.floor(local[:, :2] / voxel_message.voxel_size + r / 2).astype(np.int64)
        inside = ((columns >= 0) & (columns < r)).all(axis=1)
        out["anomaly"] = 0.0
        ix, iy = columns[inside].T
        out["anomaly"][inside] = unit_map.max(axis=0)[iy, ix]
        return cloud_message(header, out), out
    index = np.floor(local / voxel_message.voxel_size + r / 2).astype(np.int64)
    inside = ((index >= 0) & (index < r)).all(axis=1)
    out["anomaly"] = 0.0
    ix, iy, iz = index[inside].T
    out["anomaly"][inside] = unit_map[iz, iy, ix]                # grids are [z, y, x]
    return cloud_message(header, out), out
