"""rosbag2 files of the camera topics -> frames and folder datasets (ROS-free: the `rosbags`
library reads MCAP and sqlite3 bags, ours or recorded by `ros2 bag record`).

A frame is a colour image with the depth image of the same stamp (realsense-ros stamps the
aligned depth with its colour frame's stamp; stamps within ``slop_s`` also pair) and the
newest camera_info before it. Images are decoded by the same functions the live nodes use
(ros/image_conversion.py works on any object with the sensor_msgs/Image fields).

Labels: bags written by our recorder (recorder_node) carry ``label`` in their metadata's
custom data (good / defective / unlabeled); `gan-anomaly export-bag --label` overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np

from ..graph import CAMERA_INFO_TOPIC, COLOR_TOPIC, DEPTH_TOPIC
from ..perception.geometry import CameraIntrinsics
from ..progress import track
from ..ros.image_conversion import image_to_depth_m, image_to_rgb

LABELS = ("good", "defective", "unlabeled")
# Colour frames waiting for their depth (or the reverse) are dropped after this many newer
# ones: a bag with a topic missing must not fill the memory.
PENDING_LIMIT = 30


class BagError(ValueError):
    """A bag cannot be used; the message says which file or topic."""


@dataclass
class BagFrame:
    stamp_ns: int
    frame_id: str
    rgb: np.ndarray                  # H x W x 3 uint8
    depth_m: Optional[np.ndarray]    # H x W float32 metres, 0 = invalid
    intrinsics: Optional[CameraIntrinsics]


def stamp_ns(message) -> int:
    return int(message.header.stamp.sec) * 1_000_000_000 + int(message.header.stamp.nanosec)


def bag_label(path) -> Optional[str]:
    """The label our recorder stored in the bag's metadata (metadata.yaml's custom_data, which
    the rosbags reader does not expose), or None."""
    import yaml

    metadata = Path(path) / "metadata.yaml"
    if not metadata.is_file():
        return None
    info = (yaml.safe_load(metadata.read_text()) or {}).get("rosbag2_bagfile_information", {})
    label = (info.get("custom_data") or {}).get("label")
    return label if label in LABELS else None


def _intrinsics(info) -> Optional[CameraIntrinsics]:
    k = list(info.k)
    if not (k[0] > 0 and k[4] > 0):
        return None
    return CameraIntrinsics(width=int(info.width), height=int(info.height), fx=k[0], fy=k[4],
                            cx=k[2], cy=k[5])


def read_bag_frames(paths: Sequence, color_topic: str = COLOR_TOPIC,
                    depth_topic: Optional[str] = DEPTH_TOPIC,
                    info_topic: str = CAMERA_INFO_TOPIC, slop_s: float = 0.02
                    ) -> Iterator[BagFrame]:
    """Colour + depth (+ camera_info) frames of these bags, in time order. ``depth_topic``
    None: colour only."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.exists():
            raise BagError(f"bag {path} does not exist")
    try:
        reader = AnyReader(paths, default_typestore=get_typestore(Stores.ROS2_JAZZY))
        reader.open()
    except Exception as exc:  # rosbags raises its own types for unreadable bags
        raise BagError(f"cannot read bag(s) {', '.join(map(str, paths))}: {exc}") from exc
    try:
        wanted = [t for t in (color_topic, depth_topic, info_topic) if t]
        present = {c.topic for c in reader.connections}
        missing = [t for t in wanted[:2] if t not in present]
        if missing:
            raise BagError(f"bag(s) {', '.join(map(str, paths))} have no {missing}; topics: "
                           f"{sorted(present)} (choose with --color-topic / --depth-topic)")
        connections = [c for c in reader.connections if c.topic in wanted]
        yield from _pair(reader, connections, color_topic, depth_topic, info_topic, slop_s)
    finally:
        reader.close()


def _camera_infos(reader, connections, info_topic):
    """(stamps, intrinsics) of every camera_info, in stamp order: a first pass over the small
    messages, so a frame finds its camera_info even when that was written after the images."""
    infos = sorted((stamp_ns(m), _intrinsics(m)) for m in (
        reader.deserialize(raw, c.msgtype) for c, _, raw in
        reader.messages(connections=[c for c in connections if c.topic == info_topic])))
    return [s for s, _ in infos], [k for _, k in infos]


def _intrinsics_at(stamps, values, stamp):
    """The camera_info with the nearest stamp (None without any)."""
    if not stamps:
        return None
    i = int(np.searchsorted(stamps, stamp))
    best = min((j for j in (i - 1, i) if 0 <= j < len(stamps)),
               key=lambda j: abs(stamps[j] - stamp))
    return values[best]


def _pair(reader, connections, color_topic, depth_topic, info_topic, slop_s):
    colours: Dict[int, object] = {}
    depths: Dict[int, object] = {}
    info_stamps, info_values = _camera_infos(reader, connections, info_topic)
    slop_ns = int(slop_s * 1e9)
    images = [c for c in connections if c.topic != info_topic]
    for connection, _, raw in reader.messages(connections=images):
        message = reader.deserialize(raw, connection.msgtype)
        stamp = stamp_ns(message)
        intrinsics = _intrinsics_at(info_stamps, info_values, stamp)
        if connection.topic == color_topic and depth_topic is None:
            yield BagFrame(stamp, message.header.frame_id, np.array(image_to_rgb(message)),
                           None, intrinsics)
            continue
        mine, other = (colours, depths) if connection.topic == color_topic else (depths, colours)
        match = min(other, key=lambda s: abs(s - stamp), default=None)
        if match is None or abs(match - stamp) > slop_ns:
            mine[stamp] = message
            for store in (colours, depths):      # bounded: old unmatched frames go
                while len(store) > PENDING_LIMIT:
                    store.pop(min(store))
            continue
        partner = other.pop(match)
        colour, depth = (message, partner) if connection.topic == color_topic else \
            (partner, message)
        yield BagFrame(stamp_ns(colour), colour.header.frame_id,
                       np.array(image_to_rgb(colour)), image_to_depth_m(depth), intrinsics)


def export_bag(paths: Sequence, out, label: Optional[str] = None, split: str = "train",
               color_topic: str = COLOR_TOPIC, depth_topic: Optional[str] = DEPTH_TOPIC,
               info_topic: str = CAMERA_INFO_TOPIC, progress: bool = True) -> Dict:
    """Write the bags' frames as a folder dataset (data/folders.py's RGB-D layout):
    ``<out>/<split>/<label>/rgb/NNNNNN.png``, ``depth/NNNNNN.png`` (16-bit millimetres) and
    ``<out>/camera_info.json``. The label is ``label``, else the one our recorder stored in
    each bag, else refused (training needs to know which frames are good)."""
    from .synthetic import _save_png

    out = Path(out)
    counts: Dict[str, int] = {}
    first_intrinsics = None
    for path in paths:
        chosen = label or bag_label(path)
        if chosen not in LABELS or chosen == "unlabeled":
            raise BagError(f"bag {path} has no usable label ({chosen!r}): pass --label good "
                           "(or defective) for bags recorded without our recorder")
        name = "good" if chosen == "good" else "defective"
        frames = read_bag_frames([path], color_topic, depth_topic, info_topic)
        if progress:
            frames = track(frames, desc=f"export {Path(path).name}", unit="frame")
        for frame in frames:
            index = counts.get(name, 0)
            folder = out / split / name
            _save_png(folder / "rgb" / f"{index:06d}.png", frame.rgb)
            if frame.depth_m is not None:
                millimetres = np.clip(np.round(frame.depth_m * 1000.0), 0, 65535)
                _save_png(folder / "depth" / f"{index:06d}.png", millimetres.astype(np.uint16))
            counts[name] = index + 1
            first_intrinsics = first_intrinsics or frame.intrinsics
    if not counts:
        raise BagError(f"no complete frame (colour with its depth) in {list(map(str, paths))}")
    if first_intrinsics is not None:
        import json
        info = dict(first_intrinsics.to_dict(), depth_units_m=0.001,
                    source=[str(p) for p in paths])
        (out / "camera_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return {"out": str(out), "split": split, "frames": counts}


def bags_to_dataset(paths: List, out, **topics) -> Path:
    """`train --bag`: the bags as a folder dataset whose train/good is their good frames
    (``out`` is replaced: it is this function's own export)."""
    import shutil

    if Path(out).exists():
        shutil.rmtree(out)
    summary = export_bag(paths, out, split="train", **topics)
    if "good" not in summary["frames"]:
        raise BagError("none of the bags holds good frames: training needs normal parts")
    return Path(out)
