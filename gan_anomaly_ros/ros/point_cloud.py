"""sensor_msgs/PointCloud2 <-> numpy structured arrays, float32 fields only.

Fallback for sensor_msgs_py.point_cloud2, which is not on PyPI: the same byte layout
(little-endian, packed, unorganised height 1), written and read with one numpy view instead of
a Python loop per point. Colour follows the PCL/rviz convention: 8-bit r, g, b packed into the
low 24 bits of a uint32 that the message stores in a FLOAT32 field named ``rgb``.
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import PointCloud2, PointField


def float_dtype(names) -> np.dtype:
    return np.dtype([(name, "<f4") for name in names])


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """N x 3 uint8 -> N float32 whose bits are 0x00RRGGBB (what rviz's RGB8 colouring reads)."""
    rgb = np.asarray(rgb, np.uint32)
    packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    return packed.astype("<u4").view("<f4")


def unpack_rgb(values: np.ndarray) -> np.ndarray:
    packed = np.asarray(values, "<f4").view("<u4")
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], 1).astype(np.uint8)


def cloud_message(header, points: np.ndarray) -> PointCloud2:
    """A structured array of float32 fields (x, y, z first) -> an unorganised PointCloud2."""
    points = np.ascontiguousarray(points, dtype=float_dtype(points.dtype.names))
    fields = [PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
              for i, name in enumerate(points.dtype.names)]
    return PointCloud2(header=header, height=1, width=len(points), fields=fields,
                       is_bigendian=False, point_step=points.dtype.itemsize,
                       row_step=points.dtype.itemsize * len(points),
                       data=points.tobytes(), is_dense=True)


def cloud_array(message: PointCloud2) -> np.ndarray:
    """PointCloud2 with FLOAT32 fields -> structured array (a copy), one record per point."""
    if message.is_bigendian:
        raise ValueError("big-endian point clouds are not supported")
    if any(f.datatype != PointField.FLOAT32 or f.count != 1 for f in message.fields):
        raise ValueError("only clouds of single FLOAT32 fields are supported, got "
                         f"{[(f.name, f.datatype, f.count) for f in message.fields]}")
    dtype = np.dtype({"names": [f.name for f in message.fields],
                      "formats": ["<f4"] * len(message.fields),
                      "offsets": [f.offset for f in message.fields],
                      "itemsize": message.point_step})
    count = message.width * message.height
    return np.frombuffer(bytes(message.data), dtype=dtype, count=count).copy()
