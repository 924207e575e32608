"""Speed and accuracy of the perception step, with open3d's own pipeline beside it.

For synthetic 640x480 RGB-D frames (part anywhere on the table, any yaw, RealSense-like depth
artefacts) it times, per frame, our whole perception step: back-projection, workspace, plane,
part region, centroid and box, the part-centred RGB-D crop and the part's voxel grid; and on a
few of the same frames open3d's pipeline on the full cloud (segment_plane, cluster_dbscan,
oriented box, VoxelGrid). It reports medians, the ratio, and the centroid error against the
generator's ground truth (the part's centre at half height).

Each frame is also timed as the live preprocess node sees it, as the next frame of one
camera's stream: the previous frame's plane is offered as a hint (part_finder.PlaneHint) and
only checked, instead of a new RANSAC. Both are timed on the same frame, one after the other.
The stream is timed a second time with the node's FrameScratch (full-frame arrays reused from
frame to frame instead of allocated), the two in alternating order from frame to frame.

    python benchmarks/perception_speed.py [--frames 60] [--open3d-frames 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan_anomaly_ros.data.synthetic import render_scene  # noqa: E402
from gan_anomaly_ros.perception.frame_input import prepare_frame  # noqa: E402
from gan_anomaly_ros.perception.geometry import depth_to_points  # noqa: E402
from gan_anomaly_ros.perception.part_finder import FrameScratch, PlaneHint  # noqa: E402
from gan_anomaly_ros.perception.preprocessing import PreprocessConfig  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "perception.json"


def our_step(frame, config, plane_hint=None, scratch=None):
    """Everything the preprocess node does with a frame before publishing."""
    prepared = prepare_frame(frame.color, frame.depth_m, frame.intrinsics, config,
                             plane_hint=plane_hint, scratch=scratch)
    voxels = None
    if prepared.inspected:
        from gan_anomaly_ros.perception.part_voxels import part_voxel_grid
        voxels = part_voxel_grid(prepared.part, 32)
    return prepared, voxels


def open3d_step(frame):
    """open3d on the full cloud: plane, clusters of the rest, largest one, box, voxels."""
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(
        depth_to_points(frame.depth_m, frame.intrinsics).astype(np.float64)))
    _, inliers = cloud.segment_plane(distance_threshold=0.004, ransac_n=3, num_iterations=100)
    rest = cloud.select_by_index(inliers, invert=True)
    labels = np.asarray(rest.cluster_dbscan(eps=0.005, min_points=10))
    largest = np.bincount(labels[labels >= 0]).argmax()
    part = rest.select_by_index(np.flatnonzero(labels == largest))
    box = part.get_oriented_bounding_box()
    o3d.geometry.VoxelGrid.create_from_point_cloud(part, voxel_size=max(box.extent) / 32)
    return np.asarray(box.center)


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, 1000 * (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--open3d-frames", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    config = PreprocessConfig(mode="rgbd", size=64, crop_mode="part", depth_range_m=0.03,
                              normalize="standardize")
    frames = [render_scene(1000 + i, placement="random", depth_artifacts=True)
              for i in range(args.frames)]
    our_step(frames[0], config)                       # warm caches (rays, imports)
    ours, errors_mm, statuses = [], [], {}
    streamed, stream_errors_mm, hint = [], [], None
    scratched, scratch = [], FrameScratch.for_shape(None, frames[0].depth_m.shape)
    for index, frame in enumerate(frames):
        (prepared, _), ms = timed(our_step, frame, config)
        ours.append(ms)
        if index % 2:
            _, scratch_ms = timed(our_step, frame, config, hint, scratch)
        (in_stream, _), stream_ms = timed(our_step, frame, config, hint)
        if not index % 2:
            _, scratch_ms = timed(our_step, frame, config, hint, scratch)
        streamed.append(stream_ms)
        scratched.append(scratch_ms)
        hint = PlaneHint.from_observation(in_stream.part) or hint
        statuses[prepared.status.name] = statuses.get(prepared.status.name, 0) + 1
        truth = np.array(frame.info["part_center_camera_m"])
        if prepared.inspected:
            errors_mm.append(1000 * np.linalg.norm(prepared.part.centroid - truth))
        if in_stream.inspected:
            stream_errors_mm.append(1000 * np.linalg.norm(in_stream.part.centroid - truth))
    theirs, their_errors = [], []
    if args.open3d_frames:
        open3d_step(frames[0])                        # warm up too: imports, thread pools
    for frame in frames[:args.open3d_frames]:
        centre, ms = timed(open3d_step, frame)
        theirs.append(ms)
        their_errors.append(1000 * np.linalg.norm(centre - frame.info["part_center_camera_m"]))

    result = {
        "frames": args.frames, "size": "640x480", "machine": f"{platform.processor() or platform.machine()}, "
        f"{__import__('os').cpu_count()} cores",
        "ours_ms_median": float(np.median(ours)), "ours_ms_p95": float(np.percentile(ours, 95)),
        "stream_ms_median": float(np.median(streamed)),
        "stream_ms_p95": float(np.percentile(streamed, 95)),
        "stream_scratch_ms_median": float(np.median(scratched)),
        "stream_scratch_ms_p95": float(np.percentile(scratched, 95)),
        "stream_centroid_error_mm_median": float(np.median(stream_errors_mm)),
        "stream_inspected": len(stream_errors_mm),
        "open3d_frames": len(theirs), "open3d_ms_median": float(np.median(theirs)) if theirs else None,
        "centroid_error_mm_median": float(np.median(errors_mm)),
        "centroid_error_mm_p95": float(np.percentile(errors_mm, 95)),
        "centroid_error_mm_max": float(np.max(errors_mm)),
        "open3d_centroid_error_mm_median": float(np.median(their_errors)) if theirs else None,
        "statuses": statuses,
    }
    print(f"perception step, 640x480, {args.frames} frames (random placement, depth artefacts)")
    print(f"  ours (plane, part, box, crop, 32^3 voxels): median {result['ours_ms_median']:.1f} ms"
          f", p95 {result['ours_ms_p95']:.1f} ms")
    print(f"  ours in a stream (previous frame's plane checked, not refitted): median "
          f"{result['stream_ms_median']:.1f} ms, p95 {result['stream_ms_p95']:.1f} ms -> "
          f"{result['ours_ms_median'] / result['stream_ms_median']:.2f}x; centroid error median "
          f"{result['stream_centroid_error_mm_median']:.2f} mm, {len(stream_errors_mm)} "
          "frames inspected")
    print(f"  the same stream reusing its full-frame arrays (FrameScratch): median "
          f"{result['stream_scratch_ms_median']:.1f} ms, p95 {result['stream_scratch_ms_p95']:.1f}"
          f" ms -> {result['stream_ms_median'] / result['stream_scratch_ms_median']:.2f}x")
    if theirs:
        print(f"  open3d on the full cloud ({len(theirs)} frames): median "
              f"{result['open3d_ms_median']:.0f} ms  -> ours is "
              f"{result['open3d_ms_median'] / result['ours_ms_median']:.0f}x faster")
    print(f"  centroid error: median {result['centroid_error_mm_median']:.2f} mm, p95 "
          f"{result['centroid_error_mm_p95']:.2f} mm, max {result['centroid_error_mm_max']:.2f} mm"
          + (f" (open3d box centre: median {result['open3d_centroid_error_mm_median']:.1f} mm)"
             if theirs else ""))
    print(f"  statuses: {statuses}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
