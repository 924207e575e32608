"""Can a GAN find geometry-only dents from the part's relative heights? (issue 8's next step)

    python benchmarks/relative_height_gan.py                 # f-AnoGAN, +-8 mm, 30 epochs
    python benchmarks/relative_height_gan.py --range-mm 25   # the part's whole height in range

The input is placement_floors.py's relative-height map: the part's orthographic height map in
its box frame (64 x 64 cells, mm) less its top face's level, so the part's height and the
plane's tilt drop out, then mapped to [-1, 1] over +-``--range-mm`` (clipped: the table and
deep holes saturate, the top face keeps its millimetres). On benchmarks/geometry_defects.py's
set (geometry-only dents, bumps and missing chunks; parts anywhere at any yaw, depth
artefacts), a model of the zoo trains on the normal training parts with its defaults
(``train_on_inputs``, the trainer `gan-anomaly train` runs, 10 % held out), and the test parts are scored with its default score and
with the other memory scores listed, printing image AUROC overall and per defect type.

This was the measurement on arrays that led to preprocessing mode `height`
(perception/part_heights.py, which bins only the occupied cells for the top-face level);
benchmarks/geometry_defects.py measures that mode through `gan-anomaly train` / `eval`.
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

from placement_floors import (GEOMETRY_DATA, RESULTS, ensure_dataset, found_parts,  # noqa: E402
                              relative_heights, report)

from gan_anomaly_ros.models import MODELS  # noqa: E402
from gan_anomaly_ros.perception.preprocessing import PreprocessConfig  # noqa: E402
from gan_anomaly_ros.training import TrainConfig, split_holdout  # noqa: E402
from gan_anomaly_ros.training.run import train_on_inputs  # noqa: E402

OTHER_SCORES = ("memory:network=encoder,layer=-3,reduce=max",
                "memory:network=critic,layer=-3,reduce=max")


def relative_height_inputs(data: Path, split: str, poses: dict, range_mm: float):
    """N x 1 x 64 x 64 inputs in [-1, 1] and the frame labels."""
    maps, names = [], []
    for part, rgb, _, label in found_parts(data, split, poses):
        maps.append(np.clip(relative_heights(part, rgb) / range_mm, -1.0, 1.0))
        names.append(label)
    return torch.from_numpy(np.stack(maps)[:, None].astype(np.float32)), np.array(names)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="f_anogan", choices=[m for m in MODELS
                                                                 if m != "voxel_gan"])
    parser.add_argument("--range-mm", type=float, default=8.0)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "relative_height_gan.json"))
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    data = ensure_dataset(RESULTS / "geometry_defects" / "data", GEOMETRY_DATA)
    poses = json.loads((data / "ground_truth" / "poses.json").read_text())
    train_inputs, train_names = relative_height_inputs(data, "train", poses, args.range_mm)
    test_inputs, names = relative_height_inputs(data, "test", poses, args.range_mm)
    normal = train_inputs[torch.from_numpy(train_names == "good")]
    # One channel at 64 px: what the trainer needs to know of the (array) inputs.
    shape = PreprocessConfig(mode="gray", size=test_inputs.shape[-1])
    config = TrainConfig(model=args.model, epochs=args.epochs, seed=args.seed)
    model, _, info = train_on_inputs(normal.numpy(), shape, config)
    model.eval()
    seconds = info["train_seconds"]
    bank_idx, hold_idx = split_holdout(len(normal), config.holdout, config.seed)  # as it did
    labels = (names != "good").astype(int)
    print(f"{args.model}, relative heights +-{args.range_mm:g} mm, {args.epochs} epochs, "
          f"{len(bank_idx)} training parts, {seconds:.0f} s; test {len(names)} parts:")
    rows = {}
    for spec in (model.default_score,) + OTHER_SCORES:
        model.set_score(spec)
        model.fit_score(normal[bank_idx], reference=normal[hold_idx])
        with torch.no_grad():
            scores = model.predict(test_inputs).scores.numpy()
        rows[model.score_spec.text()] = report(model.score_spec.text()[:44], scores, labels,
                                               names)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    results[f"{args.model}/range_mm={args.range_mm:g}/epochs={args.epochs}/seed={args.seed}"] = {
        "train_seconds": round(seconds, 1), "scores": rows}
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
