"""Is a 2D model with the part-centred crop robust to where the part lies on the table?

    python benchmarks/part_crop_placement.py               # data (once), train, eval, table
    python benchmarks/part_crop_placement.py --eval-only   # rescore the saved checkpoints
    python benchmarks/part_crop_placement.py --runs colour_centered,colour_random --seed 1
                                   # another training seed: rows, checkpoints and markdown
                                   # (part_crop_placement_seed1.md) kept beside seed 0's

Two synthetic RGB-D datasets that differ only in placement: "centered" (the part near the
image centre, yaw within +-15 degrees) and "random" (anywhere on the table, any yaw); the same
sizes and seeds (by default 300 training scenes, 40 good and 15 per defect type for testing),
the standard DEFECT_TYPES (dent, bump, hole, scratch, stain), no depth artefacts. Written once
into <out>/data/{centered,random} (git-ignored).

Runs (each `gan-anomaly train` + `gan-anomaly eval` as subprocesses, same epochs and seed):

- part_centered: the default model (f_anogan, --mode rgbd) with part crops (--crop part) on
  the centred set;
- part_random:   the same on the random-placement set. Target: image AUROC within 0.02 of
  part_centered;
- fixed_random:  for reference, the old fixed centre crop (--crop fixed --center-crop 0.4)
  on the random-placement set: the part is mostly outside or cut by that crop, so it should be
  clearly worse;
- part_random_rot30 (optional, --runs): part_random with --augment rotate=30 (random
  placement turns the part by any yaw, the part crop centres it but does not turn it back;
  the bolt pattern repeats every 60 degrees);
- fixed_centered (optional, --runs): the fixed centre crop on the centred set, where it fits;
- height_centered / height_random (optional, --runs): the same model on the parts'
  relative-height maps (--mode height, in the part's own frame, geometry only: it cannot see
  colour-only defects such as stains);
- colour_centered / colour_random (optional, --runs): the same model on the parts'
  orthographic colour view (--mode part_colour, in the part's own frame: no perspective).

When part_X (or colour_X) and height_X checkpoints both exist for a placement X, a "both
models" line
scores every test part with the two and fuses their verdicts by the rule of
verdict_fusion_node (gan_anomaly_ros/fusion.py: the larger of the calibrated logits as the
score, anomalous when either model's own threshold says so): what a cell running the colour
and the height model side by side (`geometry_model:=`) sees.

The table and the markdown show every run stored for the same --epochs and --size, so
optional runs added later join the default ones.

Printed and written to <out>/part_crop_placement.{json,md}: image AUROC overall and per
defect type, the part_random - part_centered difference, training wall time, evaluation ms
per frame and frames left out (NO_PART / INVALID_INPUT) in train / test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from geometry_defects import (add_run_arguments, ensure_dataset, log, machine, table,  # noqa: E402
                              train_and_eval)

from gan_anomaly_ros.data.synthetic import DEFECT_TYPES  # noqa: E402

NAME = "part_crop_placement"
DATA = {"n_train": 300, "n_test_good": 40, "n_test_per_defect": 15, "seed": 0,
        "depth_artifacts": False, "defects": list(DEFECT_TYPES)}
EPOCHS = 30  # the CLI's default
TOLERANCE = 0.02
MODEL = ["--model", "f_anogan", "--mode", "rgbd"]
RUNS = {
    "part_centered": {"placement": "centered", "args": MODEL + ["--crop", "part"],
                      "input": "RGB-D, part crop"},
    "part_random": {"placement": "random", "args": MODEL + ["--crop", "part"],
                    "input": "RGB-D, part crop"},
    "fixed_random": {"placement": "random",
                     "args": MODEL + ["--crop", "fixed", "--center-crop", "0.4"],
                     "input": "RGB-D, fixed centre crop 0.4"},
    "part_random_rot30": {"placement": "random",
                          "args": MODEL + ["--crop", "part", "--augment", "rotate=30"],
                          "input": "RGB-D, part crop, --augment rotate=30"},
    "fixed_centered": {"placement": "centered",
                       "args": MODEL + ["--crop", "fixed", "--center-crop", "0.4"],
                       "input": "RGB-D, fixed centre crop 0.4"},
    "height_centered": {"placement": "centered",
                        "args": ["--model", "f_anogan", "--mode", "height"],
                        "input": "relative heights, defaults: turned"},
    "height_random": {"placement": "random", "args": ["--model", "f_anogan", "--mode", "height"],
                      "input": "relative heights, defaults: turned"},
    "colour_centered": {"placement": "centered",
                        "args": ["--model", "f_anogan", "--mode", "part_colour"],
                        "input": "part colour (orthographic), defaults: turned, polar cells"},
    "colour_random": {"placement": "random",
                      "args": ["--model", "f_anogan", "--mode", "part_colour"],
                      "input": "part colour (orthographic), defaults: turned, polar cells"},
}
# The map runs again with the part's box along its principal axes (what every map model saw
# before part_orientation.py; the default now turns it to the flange's 6-fold bolt pattern),
# and the colour view turned that way but in the square grid (the default for these turned
# parts is polar cells, polar_view.py).
VARIANT_ARGS = {"axes": (["--part-orientation", "axes", "--map-projection", "cartesian"],
                         ", principal axes"),
                "square": (["--map-projection", "cartesian"], ", turned, square grid")}
MAP_INPUTS = {"height": "relative heights", "colour": "part colour (orthographic)"}
for _placement in ("centered", "random"):
    for _kind, _variant in (("height", "axes"), ("colour", "axes"), ("colour", "square")):
        _run = RUNS[f"{_kind}_{_placement}"]
        _extra, _what = VARIANT_ARGS[_variant]
        RUNS[f"{_kind}_{_variant}_{_placement}"] = dict(
            _run, args=_run["args"] + _extra, input=MAP_INPUTS[_kind] + _what)
# The colour runs that a "both models" line fuses with a height model: their name prefix
# (<prefix>_<placement>), the height run's prefix and what the line calls them.
COLOUR_RUNS = {"part": ("height", "part crop RGB-D"), "colour": ("height", "part colour"),
               "colour_square": ("height", "part colour in the square grid"),
               "colour_axes": ("height_axes", "part colour, principal axes")}
DEFAULT_RUNS = "part_centered,part_random,fixed_random"


def seed_suffix(seed: int) -> str:
    """Rows and checkpoints of training seeds other than 0 are kept beside seed 0's."""
    return f"_seed{seed}" if seed else ""


def both_models(out: Path, placement: str, epochs: int, size: int, colour_run: str = "part",
                seed: int = 0, height_run: str = "height"):
    """The two models' fused verdicts on the test parts of ``placement``, by the rule that
    verdict_fusion_node runs (fusion.fuse: the larger calibrated logit as the score, anomalous
    when either model says so) -> (image AUROC, per-type AUROC, F1 and accuracy of the fused
    decision); None without both checkpoints."""
    import numpy as np

    from gan_anomaly_ros.data.folders import prepare_split
    from gan_anomaly_ros.fusion import ModelVerdict, fuse
    from gan_anomaly_ros.metrics import auroc
    from gan_anomaly_ros.scoring import Scorer
    from gan_anomaly_ros.sorting import INSPECTED

    sources = (colour_run, height_run)
    paths = [out / "checkpoints" / f"{run}_{placement}_e{epochs}_s{size}{seed_suffix(seed)}"
             ".safetensors" for run in sources]
    if not all(p.exists() for p in paths):
        return None
    verdicts, labels = {}, {}
    for source, path in zip(sources, paths):
        scorer = Scorer(path, "cpu")
        split = prepare_split(out / "data" / placement, "test", scorer.preprocessing,
                              progress=False)
        calibration = scorer.calibration
        for f, r in zip(split.files, scorer.score_batch(split.inputs)):
            verdicts.setdefault(str(f.rgb_path), []).append(ModelVerdict(
                source, INSPECTED, r.is_anomaly,
                calibration.normalize(r.score)))
        labels.update({str(f.rgb_path): n for f, n in zip(split.files, split.label_names)})
    keys = sorted(k for k, v in verdicts.items() if len(v) == len(sources))
    fused = [fuse(verdicts[k], sources) for k in keys]
    score = np.array([v.score for v in fused])
    names = np.array([labels[k] for k in keys])
    good = score[names == "good"]
    per_type = {t: auroc(np.r_[np.zeros(len(good)), np.ones(int((names == t).sum()))],
                         np.r_[good, score[names == t]]) for t in sorted(set(names) - {"good"})}
    truth = names != "good"
    flagged = np.array([v.is_anomaly for v in fused])
    true_positives = int((flagged & truth).sum())
    f1 = 2 * true_positives / max(int(flagged.sum()) + int(truth.sum()), 1)
    return auroc(truth.astype(int), score), per_type, f1, float((flagged == truth).mean())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=DEFAULT_RUNS, help=f"comma list of {', '.join(RUNS)}")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--size", type=int, default=64, help="model input size, px")
    add_run_arguments(parser, DATA, NAME)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.runs.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        parser.error(f"unknown runs {unknown}; known: {', '.join(RUNS)}")

    out = Path(args.out)
    spec = dict(DATA, n_train=args.n_train, n_test_good=args.n_test_good,
                n_test_per_defect=args.n_test_per_defect)
    results_file = out.parent / f"{NAME}.json"
    stored = json.loads(results_file.read_text()) if results_file.exists() else {}
    results = stored.get("rows", {})
    folders = {}
    for placement in sorted({RUNS[n]["placement"] for n in names}):
        folders[placement] = ensure_dataset(out / "data" / placement,
                                            dict(spec, placement=placement))

    for name in names:
        run = RUNS[name]
        key = f"{name}_e{args.epochs}_s{args.size}{seed_suffix(args.seed)}"
        log(f"=== {name} ({args.epochs} epochs, size {args.size})")
        row = train_and_eval(key, list(run["args"]) + ["--size", args.size, "--epochs",
                                                       args.epochs],
                             folders[run["placement"]], out, args, results.get(key))
        row.update(variant=name, input=f"{run['input']} {args.size} px",
                   placement=run["placement"], epochs=args.epochs, size=args.size,
                   device=args.device, threads=args.threads, seed=args.seed)
        results[key] = row
        results_file.write_text(json.dumps({"dataset": spec, "machine": machine(),
                                            "rows": results}, indent=2))
        log(json.dumps({k: row[k] for k in ("variant", "image_auroc", "per_type",
                                             "train_seconds", "ms_per_frame")}))

    order = {n: i for i, n in enumerate(RUNS)}
    rows = sorted((r for r in results.values() if r["epochs"] == args.epochs
                   and r["size"] == args.size and r["variant"] in order
                   and r.get("seed", 0) == args.seed),
                  key=lambda r: order[r["variant"]])
    by_name = {r["variant"]: r for r in rows}
    current = table(rows, list(DEFECT_TYPES), extra=(("placement", "placement"),),
                    first="run")
    verdicts = []
    if "part_centered" in by_name and "part_random" in by_name:
        diff = by_name["part_random"]["image_auroc"] - by_name["part_centered"]["image_auroc"]
        verdicts.append(f"Part crop, random - centred placement: {diff:+.3f} image AUROC "
                        f"(target: within {TOLERANCE:.2f}): "
                        f"{'met' if abs(diff) <= TOLERANCE else 'MISSED'}.")
    if "height_centered" in by_name and "height_random" in by_name:
        diff = by_name["height_random"]["image_auroc"] - \
            by_name["height_centered"]["image_auroc"]
        verdicts.append(f"Height maps, random - centred placement: {diff:+.3f} image AUROC.")
    if "colour_centered" in by_name and "colour_random" in by_name:
        diff = by_name["colour_random"]["image_auroc"] - \
            by_name["colour_centered"]["image_auroc"]
        verdicts.append(f"Part colour, random - centred placement: {diff:+.3f} image AUROC "
                        f"(target: within {TOLERANCE:.2f}): "
                        f"{'met' if abs(diff) <= TOLERANCE else 'MISSED'}.")
    for kind, name in (("height_axes", "Height maps along the principal axes"),
                       ("colour_axes", "Part colour along the principal axes"),
                       ("colour_square", "Part colour in the square grid")):
        if f"{kind}_centered" in by_name and f"{kind}_random" in by_name:
            diff = by_name[f"{kind}_random"]["image_auroc"] - \
                by_name[f"{kind}_centered"]["image_auroc"]
            verdicts.append(f"{name}, random - centred placement: {diff:+.3f} image AUROC.")
    if "fixed_random" in by_name and "part_random" in by_name:
        diff = by_name["fixed_random"]["image_auroc"] - by_name["part_random"]["image_auroc"]
        verdicts.append(f"Random placement, fixed centre crop - part crop: {diff:+.3f} image "
                        "AUROC.")
    for colour_run, (height_run, colour_name) in COLOUR_RUNS.items():
        for placement in ("centered", "random"):
            found = both_models(out, placement, args.epochs, args.size, colour_run,
                                args.seed, height_run)
            if found is not None:
                types = ", ".join(f"{t} {v:.3f}" for t, v in found[1].items())
                verdicts.append(f"Both models ({colour_name} + heights, fused as "
                                f"verdict_fusion_node does), {placement}: {found[0]:.3f} "
                                f"({types}); fused decision F1 {found[2]:.3f}, accuracy "
                                f"{found[3]:.3f}.")
    left_out = [f"{r['variant']}: train {r.get('train_left_out')}, test "
                f"{r.get('test_left_out')} {r.get('test_left_out_status') or ''}"
                for r in rows if r.get("train_left_out") or r.get("test_left_out")]
    notes = (f"Datasets: synthetic RGB-D, {spec['n_train']} training scenes, "
             f"{spec['n_test_good']} good + {spec['n_test_per_defect']} per defect type "
             f"({', '.join(DEFECT_TYPES)}) for testing, generator seed {spec['seed']}, no depth "
             "artefacts; the two differ only in placement. Model f_anogan (the default) with "
             f"its defaults, --mode rgbd, {args.size} px, {args.epochs} epochs, training seed "
             f"{args.seed}, --threads {args.threads}, --device {args.device}. 'train s "
             "(wall)': the whole `gan-anomaly train`; 'eval ms/frame': model scoring as "
             "`gan-anomaly eval` reports it; 'left out': frames without a usable part "
             "(NO_PART / INVALID_INPUT) in train / test, not scored.")
    text = (f"# Part-centred crop vs placement\n\n{current}\n\n" + "\n".join(verdicts)
            + ("\n\nFrames left out: " + "; ".join(left_out) if left_out else "")
            + f"\n\n{notes}\n\nRows: every run stored in {results_file.name} for these "
            "epochs, size and training seed (with each row's train / eval commands). Last "
            "command: "
            "`python benchmarks/part_crop_placement.py "
            f"{' '.join(argv if argv is not None else sys.argv[1:])}`\n\n"
            f"Last run on: {machine()}\n")
    (out.parent / f"{NAME}{seed_suffix(args.seed)}.md").write_text(text)
    print(current)
    for line in verdicts:
        print(line)
    if left_out:
        print("frames left out:", "; ".join(left_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
