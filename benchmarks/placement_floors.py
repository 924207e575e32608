"""Why the two missed 3D targets are missed: what the inputs alone separate, with the part turned
back to its true yaw (an oracle no camera has) and with other input treatments.

No learning: every figure is the nearest-neighbour floor (a test input's distance to the
nearest normal training input) on the synthetic sets the 3D benchmarks write, so it says what
the representation carries, whatever model is trained on it.

    python benchmarks/placement_floors.py                  # both sets (written by the two
                                                           # benchmarks below when missing)

- Part crops (benchmarks/part_crop_placement.py's "centered" and "random" sets, RGB-D, part
  crop 64 px, floor at 32 px, per-image standardised): as cut; turned back by the true yaw
  (modulo the bolt pattern's 60 degrees) from the generator's ground truth; and with a
  quadratic brightness trend removed per channel (position-dependent shading).
- Orthographic views of the same frames: the part's points binned on a 64 x 64 grid in the
  part's own frame (mean colour and height above the plane per cell; the box frame of its
  principal axes, or the true-yaw frame), so neither perspective nor position changes them.
- Voxel grids (benchmarks/geometry_defects.py's set, geometry-only defects, TSDF 32^3): in the
  part's box frame (its principal axes: the default) and in a frame along the true yaw; and a
  local floor: the largest distance of any 8^3 window (stride 4) to the nearest window of any
  normal grid, which a small dent should move more than the whole grid's distance.
- Is the dent in the data at all? A flat-face residual, no training images: the orthographic
  height map (box frame), the top face (cells within 6 mm of its 90th-percentile height),
  eroded by 3 cells away from the rim, bolt holes and bore; the score is the largest smoothed
  |height - top-face height| on it. Rotation- and position-free, it shows whether a 1.5-4 mm
  dent or bump survives the sensor noise.
- Relative-height patches: the same orthographic height maps, less the top face's level (so a
  part's height and tilt drop out), cut into patches compared with the patches of the normal
  training parts at any position (a patch memory, no yaw). Two memories: patches lying wholly
  on the top face (6 cells, stride 2; within 6 mm of its level), whose largest distance finds
  dents and bumps; and patches anywhere on the part (12 cells, stride 4), which find a rim
  broken off. Each score is put in units of its spread on held-out normal parts (10 % of the
  training parts, kept out of the memories) and the larger counts, as combined scores do.

Prints image AUROC overall and per defect type for each.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from geometry_defects import DATA as GEOMETRY_DATA, ensure_dataset  # noqa: E402
from nn_floor import nearest_distances, nearest_row_distances  # noqa: E402
from part_crop_placement import DATA as PLACEMENT_DATA  # noqa: E402

from gan_anomaly_ros.data.folders import (dataset_intrinsics, list_split, prepare_split,  # noqa: E402,E501
                                          read_depth_m, read_rgb)
from gan_anomaly_ros.metrics import auroc  # noqa: E402
from gan_anomaly_ros.perception.part_finder import find_part  # noqa: E402
from gan_anomaly_ros.perception.part_voxels import part_grid_extent  # noqa: E402
from gan_anomaly_ros.perception.preprocessing import PreprocessConfig  # noqa: E402
from gan_anomaly_ros.perception.voxels import voxel_grid  # noqa: E402
from gan_anomaly_ros.training import split_holdout  # noqa: E402
from gan_anomaly_ros.training.run import resolve_preprocessing  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
BOLT_PERIOD_DEG = 60.0   # the synthetic flange looks the same every 60 degrees of yaw


def frame_keys(frames, split: str) -> list:
    """poses.json keys ("train/good/000003") of these frames."""
    keys = []
    for frame in frames:
        path = Path(frame.rgb_path)
        label = path.parent.parent.name if path.parent.name == "rgb" else path.parent.name
        keys.append(f"{split}/{label}/{path.stem}")
    return keys


def report(name: str, scores: np.ndarray, labels: np.ndarray, names: np.ndarray) -> dict:
    good = scores[names == "good"]
    per_type = {kind: auroc(np.r_[np.zeros(len(good)), np.ones(int((names == kind).sum()))],
                            np.r_[good, scores[names == kind]])
                for kind in sorted(set(names) - {"good"})}
    row = {"image_auroc": auroc(labels, scores), "per_type": per_type}
    print(f"  {name:44s} {row['image_auroc']:.3f}  " +
          "  ".join(f"{k} {v:.3f}" for k, v in per_type.items()), flush=True)
    return row


def standardised(inputs: np.ndarray, size: int = 32) -> np.ndarray:
    x = torch.nn.functional.interpolate(torch.from_numpy(inputs).float(), size=size,
                                        mode="area").flatten(1)
    x = (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True).clamp_min(1e-6)
    return x.numpy()


def turned_back(inputs: np.ndarray, yaws_deg: np.ndarray) -> np.ndarray:
    out = np.empty_like(inputs)
    for i, yaw in enumerate(yaws_deg):
        out[i] = ndimage.rotate(inputs[i], yaw % BOLT_PERIOD_DEG, axes=(2, 1), reshape=False,
                                order=1, mode="nearest")
    return out


def without_shading_trend(inputs: np.ndarray) -> np.ndarray:
    """Each channel minus its least-squares quadratic surface in the image coordinates."""
    size = inputs.shape[-1]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / (size - 1) - 0.5
    basis = np.stack([np.ones_like(xx), xx, yy, xx * xx, yy * yy, xx * yy], -1).reshape(-1, 6)
    projection = basis @ np.linalg.pinv(basis)
    flat = inputs.reshape(inputs.shape[0], inputs.shape[1], -1).astype(np.float64)
    return (flat - flat @ projection.T).reshape(inputs.shape).astype(np.float32)


def orthographic_view(part, rgb: np.ndarray, frame: np.ndarray, size: int = 64) -> np.ndarray:
    """4 x size x size: mean colour and height above the plane of the part's points per cell
    of a grid in ``frame`` (columns: axes), covering the part's footprint plus 10 %."""
    rows, cols = part.pixels
    local = (part.points.astype(np.float64) - part.centroid) @ frame
    extent = max(part.size[:2]) * 1.1
    ix = np.clip(((local[:, 0] / extent + 0.5) * size).astype(int), 0, size - 1)
    iy = np.clip(((local[:, 1] / extent + 0.5) * size).astype(int), 0, size - 1)
    cell = iy * size + ix
    count = np.maximum(np.bincount(cell, minlength=size * size), 1)
    values = np.c_[rgb[rows, cols].astype(np.float64), part.points @ part.plane[:3] + part.plane[3]]
    view = np.stack([np.bincount(cell, values[:, c], minlength=size * size) / count
                     for c in range(4)])
    return view.reshape(4, size, size).astype(np.float32)


def found_parts(data: Path, split: str, poses: dict):
    """(part, colour image, true yaw in degrees, label) for every frame with a part found."""
    frames = list_split(data, split)
    for frame, key in zip(frames, frame_keys(frames, split)):
        rgb, depth = read_rgb(frame.rgb_path), read_depth_m(frame.depth_path)
        part = find_part(depth, dataset_intrinsics(data, rgb.shape[1], rgb.shape[0]))
        if part.inspected:
            yield part, rgb, poses[key]["part_yaw_deg"], frame.label


def in_both_frames(data: Path, split: str, poses: dict, view):
    """view(part, rgb, frame) in the box frame and in the true-yaw frame, and the labels."""
    by_box, by_yaw, names = [], [], []
    for part, rgb, yaw, label in found_parts(data, split, poses):
        by_box.append(view(part, rgb, part.rotation))
        by_yaw.append(view(part, rgb, true_yaw_frame(part, yaw)))
        names.append(label)
    return np.stack(by_box), np.stack(by_yaw), np.array(names)


def part_crop_floors(root: Path) -> dict:
    rows = {}
    for placement in ("centered", "random"):
        data = ensure_dataset(root / "data" / placement, dict(PLACEMENT_DATA,
                                                               placement=placement))
        config = resolve_preprocessing(data, PreprocessConfig(mode="rgbd", size=64,
                                                              crop_mode="part",
                                                              depth_range_m=None))
        poses = json.loads((data / "ground_truth" / "poses.json").read_text())
        train = prepare_split(data, "train", config, progress=False)
        test = prepare_split(data, "test", config, progress=False)
        yaw_train = np.array([poses[k]["part_yaw_deg"] for k in frame_keys(train.files,
                                                                            "train")])
        yaw_test = np.array([poses[k]["part_yaw_deg"] for k in frame_keys(test.files, "test")])
        names = np.array(test.label_names)
        print(f"part crops, {placement} placement ({len(train.inputs)} train, "
              f"{len(test.inputs)} test):")
        treatments = {
            "as cut": (train.inputs, test.inputs),
            "turned back by the true yaw (oracle)": (turned_back(train.inputs, yaw_train),
                                                      turned_back(test.inputs, yaw_test)),
            "quadratic shading trend removed": (without_shading_trend(train.inputs),
                                                without_shading_trend(test.inputs)),
        }
        train_box, train_yaw, train_names = in_both_frames(data, "train", poses,
                                                           orthographic_view)
        test_box, test_yaw, ortho_names = in_both_frames(data, "test", poses,
                                                         orthographic_view)
        normal = train_names == "good"
        treatments["orthographic, box frame"] = (train_box[normal], test_box)
        treatments["orthographic, true-yaw frame (oracle)"] = (train_yaw[normal], test_yaw)
        for name, (bank, queries) in treatments.items():
            scores = nearest_distances(standardised(queries), standardised(bank))
            shown = ortho_names if name.startswith("orthographic") else names
            rows[f"crop/{placement}/{name}"] = report(name, scores, (shown != "good").astype(
                int), shown)
    return rows


def true_yaw_frame(part, yaw_deg: float) -> np.ndarray:
    """The box frame with its x axis along the part's true yaw (modulo the bolt pattern)."""
    normal = part.rotation[:, 2]
    yaw = np.radians(yaw_deg % BOLT_PERIOD_DEG)
    x_axis = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    x_axis -= normal * (x_axis @ normal)
    x_axis /= np.linalg.norm(x_axis)
    return np.stack([x_axis, np.cross(normal, x_axis), normal], axis=1)


def part_grid(part, rgb, frame) -> np.ndarray:
    """1 x 32^3 TSDF grid of the part in ``frame`` (the box frame: what the voxel models see)."""
    centred = part.points.astype(np.float64) - part.centroid
    return voxel_grid(centred @ frame, part_grid_extent(part))[None]


def local_floor(bank: np.ndarray, queries: np.ndarray, window: int = 8, stride: int = 4,
                most: int = 40000) -> np.ndarray:
    def windows(grids):
        t = torch.from_numpy(grids).float()
        u = t.unfold(2, window, stride).unfold(3, window, stride).unfold(4, window, stride)
        return u.reshape(len(grids), -1, window ** 3)
    stored = windows(bank).reshape(-1, window ** 3)
    generator = torch.Generator().manual_seed(0)
    if len(stored) > most:
        stored = stored[torch.randperm(len(stored), generator=generator)[:most]]
    return np.array([torch.cdist(q, stored).min(dim=1).values.max().item()
                     for q in windows(queries)])


def top_face_residual(height_mm: np.ndarray, erode: int = 3, sigma: float = 1.0) -> float:
    """Largest smoothed deviation (mm) of an orthographic height map's top face from its
    level, away from the face's edges (erode cells) where rim and holes begin."""
    level = np.percentile(height_mm[height_mm > 5.0], 90)
    top = np.abs(height_mm - level) < 6.0
    core = ndimage.binary_erosion(top, iterations=erode)
    if not core.any():
        return 0.0
    weight = ndimage.gaussian_filter(top.astype(float), sigma)
    residual = ndimage.gaussian_filter(np.where(top, height_mm - level, 0.0), sigma)
    return float(np.abs(residual / np.maximum(weight, 1e-3))[core].max())


TOP_FACE_BAND_MM = 6.0


def relative_heights(part, rgb) -> np.ndarray:
    """64 x 64 orthographic height map (mm, box frame) less its top face's level."""
    height_mm = 1000 * orthographic_view(part, rgb, part.rotation)[3]
    return (height_mm - np.percentile(height_mm[height_mm > 5.0], 90)).astype(np.float32)


def height_patch_distances(bank: np.ndarray, queries: np.ndarray, patch: int, stride: int,
                           face_only: bool, most: int = 150000) -> np.ndarray:
    """Per query map: the largest distance of its patches to the nearest bank patch (any
    position). ``face_only``: only patches wholly within the top-face band, on both sides."""
    def patches(maps):
        return torch.nn.functional.unfold(torch.from_numpy(maps)[:, None], patch,
                                          stride=stride).transpose(1, 2)

    def on_face(found):
        return (found.abs() < TOP_FACE_BAND_MM).all(dim=2)

    stored = patches(bank)
    stored = stored[on_face(stored)] if face_only else stored.flatten(0, 1)
    if len(stored) > most:
        generator = torch.Generator().manual_seed(0)
        stored = stored[torch.randperm(len(stored), generator=generator)[:most]]
    found = patches(queries)
    nearest = nearest_row_distances(found.flatten(0, 1), stored).view(found.shape[:2])
    if face_only:
        nearest = torch.where(on_face(found), nearest, torch.zeros_like(nearest))
    return nearest.amax(dim=1).numpy()


def in_held_out_sigmas(scores: np.ndarray, held: np.ndarray) -> np.ndarray:
    centre = np.median(held)
    return (scores - centre) / max(1.4826 * np.median(np.abs(held - centre)), 1e-9)


def height_patch_floors(data: Path, poses: dict, labels, names) -> dict:
    train = [(relative_heights(part, rgb), label)
             for part, rgb, _, label in found_parts(data, "train", poses)]
    normal = np.stack([h for h, label in train if label == "good"])
    bank_idx, hold_idx = split_holdout(len(normal), 0.1, 0)
    bank, held = normal[bank_idx], normal[hold_idx]
    test = np.stack([relative_heights(part, rgb)
                     for part, rgb, _, _ in found_parts(data, "test", poses)])
    rows, z = {}, []
    for name, patch, stride, face_only in (("top-face patches (6 cells)", 6, 2, True),
                                           ("whole-part patches (12 cells)", 12, 4, False)):
        scores = height_patch_distances(bank, test, patch, stride, face_only)
        rows[f"voxel/relative heights, {name}"] = report(
            f"relative heights, {name}", scores, labels, names)
        z.append(in_held_out_sigmas(scores, height_patch_distances(bank, held, patch, stride,
                                                                   face_only)))
    rows["voxel/relative heights, both (larger held-out z)"] = report(
        "relative heights, both (larger z)", np.maximum(*z), labels, names)
    return rows


def voxel_floors(root: Path) -> dict:
    data = ensure_dataset(root / "data", GEOMETRY_DATA)
    poses = json.loads((data / "ground_truth" / "poses.json").read_text())
    train_box, train_yaw, train_names = in_both_frames(data, "train", poses, part_grid)
    test_box, test_yaw, names = in_both_frames(data, "test", poses, part_grid)
    labels = (names != "good").astype(int)
    normal = train_names == "good"
    print(f"voxel grids, geometry-only defects ({int(normal.sum())} train, {len(names)} test):")
    rows = {}
    for name, bank, queries in (("box frame (principal axes)", train_box, test_box),
                                ("true-yaw frame (oracle)", train_yaw, test_yaw)):
        rows[f"voxel/{name}"] = report(name, nearest_distances(queries, bank[normal]),
                                       labels, names)
        rows[f"voxel/{name}, local 8^3"] = report(
            name + ", local 8^3 windows", local_floor(bank[normal], queries), labels, names)
    heights = [1000 * orthographic_view(part, rgb, part.rotation)[3]
               for part, rgb, _, _ in found_parts(data, "test", poses)]
    rows["voxel/flat-face residual (no training)"] = report(
        "flat-face residual, orthographic heights", np.array([top_face_residual(h)
                                                              for h in heights]), labels, names)
    rows.update(height_patch_floors(data, poses, labels, names))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", choices=["crops", "voxels", "both"], default="both")
    parser.add_argument("--out", default=str(RESULTS / "placement_floors.json"))
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    out = Path(args.out)
    rows = json.loads(out.read_text()) if out.exists() else {}   # --parts adds to earlier runs
    if args.parts in ("crops", "both"):
        rows.update(part_crop_floors(RESULTS / "part_crop_placement"))
    if args.parts in ("voxels", "both"):
        rows.update(voxel_floors(RESULTS / "geometry_defects"))
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
