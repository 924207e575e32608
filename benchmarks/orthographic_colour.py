"""Does the part's colour survive random placement when it is seen in the part's own frame?
(issue 8's placement target: the measurement on arrays that led to preprocessing mode
"part_colour", which part_crop_placement.py `--runs colour_centered,colour_random` measures
through `gan-anomaly train` / `eval`)

    python benchmarks/orthographic_colour.py                 # colour, both placements
    python benchmarks/orthographic_colour.py --with-height   # colour + relative height

The colour model with the part crop loses 0.2 image AUROC when the part lies anywhere on the
table instead of near the centre (part_crop_placement.py), nearly all of it in scratches and
in the geometry defects that the height model finds. This script gives f-AnoGAN the part's
orthographic colour view instead: the part's points in its box frame (part_finder), binned
into 64 x 64 cells over its footprint plus 10 % (placement_floors.orthographic_view, the same
grid as the relative-height maps), each cell the mean colour of its points, so position and
perspective drop out (the yaw stays). Cells without points (the table) are 0; the occupied
cells' colour is standardised per part (mean per channel, one spread) and mapped to [-1, 1]
over +-3 spreads. ``--with-height`` adds the relative-height map as a fourth channel (+-8 mm).

f-AnoGAN with its defaults trains on the normal training parts of part_crop_placement.py's
two sets (``train_on_inputs``, the trainer `gan-anomaly train` runs, 10 % held out; 30
epochs); the test parts are scored with the memories of its critic (8 x 8 and 16 x 16 maps)
and of its encoder's 16 x 16 map, fitted on the training part. Prints image AUROC overall and
per defect type; writes benchmarks/results/orthographic_colour.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from part_crop_placement import DATA as PLACEMENT_DATA  # noqa: E402
from placement_floors import found_parts, orthographic_view, report  # noqa: E402

from geometry_defects import ensure_dataset  # noqa: E402
from gan_anomaly_ros.perception.preprocessing import PreprocessConfig  # noqa: E402
from gan_anomaly_ros.training import TrainConfig, split_holdout  # noqa: E402
from gan_anomaly_ros.training.run import train_on_inputs  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SCORES = ("memory:network=critic,reduce=top1", "memory:network=critic,layer=-3,reduce=top1",
          "memory:network=encoder,layer=-3,reduce=max")
# A cell of the part: more than this above the plane (metres).
PART_CELL_M = 0.005
COLOUR_SPREADS = 3.0
HEIGHT_RANGE_MM = 8.0


def part_view(part, rgb: np.ndarray, with_height: bool) -> np.ndarray:
    """3 (or 4) x 64 x 64 in [-1, 1]: standardised colour per cell, relative height."""
    view = orthographic_view(part, rgb, part.rotation)
    occupied = view[3] > PART_CELL_M
    colour = view[:3].astype(np.float64)
    cells = colour[:, occupied]
    colour = (colour - cells.mean(axis=1)[:, None, None]) / (cells.std() + 1e-6)
    colour = np.clip(np.where(occupied, colour, 0.0) / COLOUR_SPREADS, -1.0, 1.0)
    channels = [colour]
    if with_height:
        height_mm = 1000.0 * view[3]
        top = np.percentile(height_mm[occupied], 90)
        channels.append(np.clip(np.where(occupied, height_mm - top, -top) / HEIGHT_RANGE_MM,
                                -1.0, 1.0)[None])
    return np.concatenate(channels).astype(np.float32)


def part_views(data: Path, split: str, with_height: bool):
    poses = json.loads((data / "ground_truth" / "poses.json").read_text())
    views, names = [], []
    for part, rgb, _, label in found_parts(data, split, poses):
        views.append(part_view(part, rgb, with_height))
        names.append(label)
    return torch.from_numpy(np.stack(views)), np.array(names)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--with-height", action="store_true")
    parser.add_argument("--placements", default="centered,random")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(RESULTS / "orthographic_colour.json"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    view_name = "colour+height" if args.with_height else "colour"
    for placement in args.placements.split(","):
        data = ensure_dataset(RESULTS / "part_crop_placement" / "data" / placement,
                              dict(PLACEMENT_DATA, placement=placement))
        train_views, train_names = part_views(data, "train", args.with_height)
        test_views, names = part_views(data, "test", args.with_height)
        normal = train_views[torch.from_numpy(train_names == "good")]
        # What the trainer needs to know of the (array) inputs: channels and size.
        shape = PreprocessConfig(mode="rgbd" if args.with_height else "rgb",
                                 size=test_views.shape[-1], normalize="none")
        config = TrainConfig(model="f_anogan", epochs=args.epochs, seed=args.seed,
                             threads=args.threads, device="cpu")
        model, _, info = train_on_inputs(normal.numpy(), shape, config)
        model.eval()
        bank_idx, hold_idx = split_holdout(len(normal), config.holdout, config.seed)
        labels = (names != "good").astype(int)
        print(f"{placement}: orthographic {view_name}, {args.epochs} epochs, {len(bank_idx)} "
              f"training parts, {info['train_seconds']:.0f} s; test {len(names)} parts:")
        rows = {}
        for spec in SCORES:
            model.set_score(spec)
            model.fit_score(normal[bank_idx], reference=normal[hold_idx])
            with torch.no_grad():
                scores = model.predict(test_views).scores.numpy()
            rows[spec] = report(spec[:44], scores, labels, names)
        results[f"{placement}/{view_name}/epochs={args.epochs}/seed={args.seed}"] = {
            "train_seconds": round(info["train_seconds"], 1), "scores": rows}
        out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
