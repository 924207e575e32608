"""`gan-anomaly`: train, evaluate, make synthetic data, run the demo, bring up the graph."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import __version__
from .data.depth import DEPTH_FORMATS
from .data.synthetic import ALL_DEFECT_TYPES, DEFECT_TYPES
from .demo import DEMO_DATASET
from .graph import CAMERAS, default_model_path, inspection_graph
from .models import MODELS
from .perception.part_orientation import MAX_HARMONIC
from .perception.preprocessing import MAP_MODES, MODES, PART_MODES



def _parse_augment(text: str):
    from .training.augment import parse_augment

    try:
        return parse_augment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def parse_hparam(text: str):
    key, _, value = text.partition("=")
    if not key or not _:
        raise argparse.ArgumentTypeError(f"--hparam takes key=value, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _depth_range(text: str):
    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--depth-range takes metres or 'auto', got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"--depth-range must be > 0 m, got {value}")
    return value


def _part_orientation(text: str):
    if text in ("auto", "axes"):
        return text
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= MAX_HARMONIC:
        raise argparse.ArgumentTypeError(f"--part-orientation takes auto, axes or a whole "
                                         f"number from 1 to {MAX_HARMONIC}, got {text!r}")
    return value


def _add_preprocessing_args(parser):
    parser.add_argument("--mode", choices=list(MODES),
                        default="rgb",
                        help="model input: colour, luminance, colour + depth, the part's "
                             "height map relative to its top face (geometry only, RGB-D "
                             "data), the part's colour in its own frame (part_colour, RGB-D "
                             "data: no perspective, for parts anywhere on the table), or the "
                             "part's voxel grid (voxel models; --size is then the grid "
                             "resolution)")
    parser.add_argument("--height-range", type=float, default=0.008, metavar="M",
                        help="height mode and relative_height voxels: relative height mapped "
                             "to [-1, 1], metres about the part's top face (default 0.008: "
                             "dents and bumps of a few mm keep their relief, the table "
                             "saturates)")
    parser.add_argument("--voxel-kind", choices=["relative_height", "tsdf", "occupancy"],
                        default="relative_height",
                        help="voxel mode: relative_height (default: truncated signed distance "
                             "of the part's height map, +-`--height-range` about its top "
                             "face, sub-millimetre levels), tsdf (the same of the part's "
                             "points in a cube over its largest side) or occupancy")
    parser.add_argument("--size", type=int, default=64, help="model input size in pixels")
    parser.add_argument("--center-crop", type=float, default=0.0,
                        help="centre square crop as a fraction of the shorter side (0 = none)")
    parser.add_argument("--crop-box", type=int, nargs=4, metavar=("X", "Y", "W", "H"))
    parser.add_argument("--crop", choices=["auto", "part", "fixed"], default="auto",
                        help="part: a square around the part found in the depth (centred "
                             "wherever the part lies; needs RGB-D data); fixed: --center-crop "
                             "/ --crop-box; auto (default): part for RGB-D datasets unless a "
                             "fixed crop is given")
    parser.add_argument("--part-margin", type=float, default=0.15,
                        help="part crops: margin added on every side, fraction of the part's "
                             "larger side")
    parser.add_argument("--normalize", choices=["standardize", "none"], default="standardize",
                        help="per-image photometric normalisation of the colour channels "
                             "(standardize: mean 0, +-3 sigma to [-1, 1]; stored in the "
                             "checkpoint, the live nodes do the same)")
    parser.add_argument("--part-orientation", type=_part_orientation, default="auto",
                        metavar="auto|axes|K",
                        help="height, part_colour and voxel modes: which way up the part is "
                             "mapped. auto (default): its k-fold pattern (bolt holes, teeth) "
                             "when the training parts show one, else its principal axes; "
                             "axes: always the principal axes; K: the K-fold pattern")
    parser.add_argument("--map-projection", choices=["auto", "cartesian", "polar"],
                        default="auto",
                        help="height and part_colour modes: the part binned into a square grid "
                             "(cartesian) or into radius x angle cells (polar); auto "
                             "(default): polar for part_colour when the training parts have a "
                             "k-fold pattern with k >= 3 (a turned part, --part-orientation), "
                             "else cartesian (height maps stay square: polar cells lost bumps)")
    parser.add_argument("--depth-range", type=_depth_range, default="auto", metavar="M|auto",
                        help="rgbd: relative depth mapped to [-1, 1], metres; auto (default) "
                             "chooses it from the training images' relief")


def _add_bag_topic_args(parser):
    from .graph import CAMERA_INFO_TOPIC, COLOR_TOPIC, DEPTH_TOPIC

    parser.add_argument("--color-topic", default=COLOR_TOPIC)
    parser.add_argument("--depth-topic", default=DEPTH_TOPIC,
                        help="the depth aligned to colour")
    parser.add_argument("--info-topic", default=CAMERA_INFO_TOPIC)


def _add_depth_format_args(parser, default_note: str = ""):
    parser.add_argument("--depth-format", choices=list(DEPTH_FORMATS), default=None,
                        help="unit of the dataset's depth images: auto (16-bit = mm, float = "
                             "m, 8-bit refused), millimetres, metres, or scaled (with "
                             "--depth-scale)" + default_note)
    parser.add_argument("--depth-scale", type=float, default=None, metavar="METRES_PER_UNIT",
                        help="metres per stored depth unit, e.g. for 8-bit depth images")


def _depth_format(args, recorded=None):
    """--depth-format/--depth-scale, else what the checkpoint's training recorded, else auto."""
    from .data.depth import DepthFormat

    if args.depth_format is None and args.depth_scale is None:
        return DepthFormat(**recorded) if recorded else None
    return DepthFormat(format=args.depth_format or "auto", scale=args.depth_scale)


def _apply_threads(args) -> None:
    if getattr(args, "threads", None):
        import torch
        torch.set_num_threads(args.threads)


def _crop_mode(args) -> str:
    """--crop auto: part crops for RGB-D datasets (the model then sees the part centred
    wherever it lies), unless the user asked for a fixed crop."""
    from .data.folders import is_rgbd_folder

    if args.crop != "auto":
        return args.crop
    if args.mode in PART_MODES:  # made from the part: found in every frame
        return "part"
    if args.center_crop or args.crop_box:
        return "fixed"
    return "part" if is_rgbd_folder(Path(args.data) / "train" / "good") else "fixed"


def _orientation_setting(args):
    """--part-orientation -> PreprocessConfig.part_orientation (None: chosen in training)."""
    if args.part_orientation == "axes":
        return 0
    if args.part_orientation == "auto":
        return None if args.mode in PART_MODES else 0
    return args.part_orientation


def _projection_setting(args):
    """--map-projection -> PreprocessConfig.map_projection (None: chosen in training)."""
    if args.mode not in MAP_MODES:
        if args.map_projection == "polar":
            raise SystemExit(f"gan-anomaly train: --map-projection polar is for the map modes "
                             f"({', '.join(MAP_MODES)}), not --mode {args.mode}")
        return "cartesian"
    if args.map_projection != "auto":
        return args.map_projection
    return None if args.mode == "part_colour" else "cartesian"


def cmd_train(args) -> int:
    from .perception.preprocessing import PreprocessConfig
    from .training import TrainConfig, train_from_folder

    if args.bag:  # through a folder: the same reading and preprocessing as any dataset
        from .data.bags import bags_to_dataset
        args.data = str(bags_to_dataset(args.bag, Path(args.out).with_suffix(".bagdata"),
                                        label=args.label, **_bag_topics(args)))

    preprocessing = PreprocessConfig(mode=args.mode, size=args.size, center_crop=args.center_crop,
                                     crop_box=tuple(args.crop_box) if args.crop_box else None,
                                     crop_mode=_crop_mode(args), part_margin=args.part_margin,
                                     voxel_kind=args.voxel_kind,
                                     height_range_m=args.height_range,
                                     depth_range_m=args.depth_range, normalize=args.normalize,
                                     part_orientation=_orientation_setting(args),
                                     map_projection=_projection_setting(args))
    config = TrainConfig(model=args.model, epochs=args.epochs, batch_size=args.batch_size,
                         seed=args.seed, holdout=args.holdout, device=args.device,
                         hparams=dict(args.hparam or []), amp=not args.no_amp,
                         log_dir=args.log_dir, resume=args.resume,
                         calibrate_every=args.calibrate_every, score=args.score,
                         patch_size=args.patch_size, augment=args.augment or {},
                         k_sigma=args.k_sigma, max_false_alarm_rate=args.max_false_alarm_rate,
                         threads=args.threads)
    _check_model_settings(config, preprocessing)
    summary = train_from_folder(args.data, args.out, preprocessing, config,
                                validation_dir=args.val_data,
                                depth_format=_depth_format(args))
    if "checkpoint_id" in summary:  # only the main process of a torchrun job reports
        print(json.dumps(summary, indent=2))
    return 0


def _check_model_settings(config, preprocessing) -> None:
    """Settings that can be checked before any image is read: model hparams, score, patch."""
    from .models import create_model
    from .training.run import check_patch_size

    size = check_patch_size(config.patch_size, preprocessing.size)
    model = create_model(config.model, preprocessing.channels, size, **config.hparams)
    model.set_score(config.score or model.default_score_for(preprocessing.mode))


def cmd_models(args) -> int:
    from .models import MODELS
    from .models.catalog import describe_models

    print("\n".join(describe_models(MODELS)))
    print("\nScores (--score): native | residual[:reduce=max|mean|top1|top10] | "
          "memory[:network=NAME,layer=N,reduce=...]; see README, \"Scores\".")
    return 0


def cmd_calibrate(args) -> int:
    from .training import recalibrate_checkpoint

    _apply_threads(args)
    summary = recalibrate_checkpoint(args.model, args.data, out_path=args.out, device=args.device,
                                     k_sigma=args.k_sigma,
                                     max_false_alarm_rate=args.max_false_alarm_rate,
                                     labeled=args.labeled, score=args.score)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_eval(args) -> int:
    from .checkpoint import read_metadata
    from .evaluation import evaluate_folder

    _apply_threads(args)
    out_dir = Path(args.out) if args.out else Path(args.model).with_name(
        Path(args.model).stem + "_eval")
    recorded = read_metadata(args.model).get("training", {}).get("depth_format")
    if args.bag:  # the bags' frames as a test split, read like any dataset
        import shutil

        from .data.bags import export_bag
        data = out_dir / "bagdata"
        if data.exists():
            shutil.rmtree(data)
        export_bag(args.bag, data, label=args.label, split="test", **_bag_topics(args))
        args.data = str(data)
    metrics = evaluate_folder(args.model, args.data, device=args.device, out_dir=out_dir,
                              depth_format=_depth_format(args, recorded))
    text = json.dumps(metrics, indent=2)
    print(text)
    print(f"threshold {metrics['threshold']:.4g} set by: {metrics['threshold_rule']} "
          f"({metrics['threshold_from_images']} images)", file=sys.stderr)
    for warning in metrics["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(text)
    print(f"ROC curve, heatmap gallery and metrics.json in {out_dir}/", file=sys.stderr)
    return 0


def cmd_synth(args) -> int:
    from .data.synthetic import write_dataset

    summary = write_dataset(args.out, n_train=args.n_train, n_test_good=args.n_test_good,
                            n_test_per_defect=args.n_test_per_defect, seed=args.seed,
                            defects=args.defects, placement=args.placement,
                            depth_artifacts=args.depth_artifacts)
    print(json.dumps(summary, indent=2))
    return 0


def _bag_topics(args) -> dict:
    return {"color_topic": args.color_topic, "depth_topic": args.depth_topic,
            "info_topic": args.info_topic}


def cmd_export_bag(args) -> int:
    from .data.bags import export_bag

    summary = export_bag(args.bag, args.out, label=args.label, split=args.split,
                         **_bag_topics(args))
    print(json.dumps(summary, indent=2))
    return 0


def cmd_export(args) -> int:
    from .export.exporting import RUNTIME_OF, export_checkpoint
    from .export.verify import ATOL, RTOL, compare_runtimes
    from .scoring import Scorer

    out = export_checkpoint(args.checkpoint, args.format, args.out, device=args.device)
    print(f"wrote {out}")
    # The same random raw crops through the eager model and the export just written.
    comparison = compare_runtimes(Scorer(args.checkpoint, args.device),
                                  Scorer(args.checkpoint, args.device, RUNTIME_OF[args.format],
                                         exported_path=out))
    print(f"max |score difference| against eager: {comparison.max_score_difference:.3g} "
          f"(scores up to {comparison.max_abs_score:.3g}), max |map difference|: "
          f"{comparison.max_map_difference:.3g}")
    if not comparison.within_tolerance:
        print(f"warning: beyond the tolerance (rtol {RTOL:g}, atol {ATOL:g}): do not deploy "
              "this export", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args) -> int:
    from .demo import ensure_default_model, run_demo

    model = Path(args.model) if args.model else default_model_path()
    if not args.model:
        ensure_default_model(model, retrain=args.retrain)
    return run_demo(model, frames=args.frames, output_dir=Path(args.output), device=args.device,
                    timeout=args.timeout, verbose=args.verbose)


def cmd_bringup(args) -> int:
    from .bringup import BringupError, run_until_interrupted

    replay = {"source": args.source, "rate": args.rate}
    try:
        graph = inspection_graph(camera=args.camera, model=args.model, device=args.device,
                                 replay=replay, threshold=args.threshold, secure=args.secure,
                                 composed=args.composed, runtime=args.runtime,
                                 exported_model=args.exported_model,
                                 camera_queue=args.camera_queue,
                                 geometry_model=args.geometry_model)
    except ValueError as exc:  # settings that do not go together, e.g. composed + secure
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return run_until_interrupted(graph)
    except BringupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _add_data_or_bags(parser, data_help: str, bag_help: str) -> None:
    """--data DIR or --bag BAG..., with --label and the bag topic options (train, eval)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help=data_help)
    source.add_argument("--bag", nargs="+", metavar="BAG", help=bag_help)
    parser.add_argument("--label", choices=["good", "defective"], default=None,
                        help="--bag: the label of bags not recorded by our recorder")
    _add_bag_topic_args(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gan-anomaly", description=__doc__)
    parser.add_argument("--version", action="version", version=f"gan_anomaly_ros {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="list the models, their default scores and "
                                           "hyper-parameters with defaults")
    models.set_defaults(func=cmd_models)

    train = sub.add_parser("train", help="train a model on a folder of normal images")
    _add_data_or_bags(train, "dataset folder (MVTec AD layout)",
                      "rosbag2 folders (MCAP or sqlite3) of the camera topics; their good "
                      "frames are exported next to --out (<out>.bagdata) and trained on")
    train.add_argument("--out", required=True, help="checkpoint to write (.safetensors)")
    train.add_argument("--model", default="f_anogan", choices=sorted(MODELS),
                       help="see `gan-anomaly models` (default: f_anogan, the best mean on "
                            "the benchmark)")
    _add_preprocessing_args(train)
    _add_depth_format_args(train)
    train.add_argument("--score", default=None, metavar="SPEC",
                       help="score head: native | residual[:reduce=..] | memory[:network=..,"
                            "layer=..,reduce=..] (default: the model's, `gan-anomaly models`)")
    train.add_argument("--patch-size", type=int, default=None, metavar="PX",
                       help="patch mode: train on random PX-pixel patches of the --size "
                            "image, score by overlapping windows (maps at --size)")
    train.add_argument("--augment", type=_parse_augment, default=None,
                       metavar="brightness=B,shift=S,rotate=DEG",
                       help="training augmentations for normal variation (default none)")
    train.add_argument("--k-sigma", type=float, default=3.0,
                       help="threshold = median + k * 1.4826 * MAD of held-out normal scores")
    train.add_argument("--max-false-alarm-rate", type=float, default=None, metavar="RATE",
                       help="threshold for at most this false-alarm rate on the held-out "
                            "normal images instead of the k-sigma rule")
    train.add_argument("--threads", type=int, default=None,
                       help="CPU threads for torch (default: torch's, OMP_NUM_THREADS)")
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--holdout", type=float, default=0.1,
                       help="fraction of train/good kept out to calibrate the threshold")
    train.add_argument("--device", default="auto", help="auto, cpu or cuda")
    train.add_argument("--hparam", type=parse_hparam, action="append",
                       help="model hyper-parameter key=value (repeatable)")
    train.add_argument("--log-dir", help="TensorBoard log folder (losses, threshold per epoch)")
    train.add_argument("--resume", action="store_true",
                       help="continue from <out>.state.pt, written after every epoch")
    train.add_argument("--val-data", help="dataset whose test split picks the best epoch "
                                          "(image AUROC); without it the last epoch is kept")
    train.add_argument("--no-amp", action="store_true", help="no bfloat16 autocast on CUDA")
    train.add_argument("--calibrate-every", type=int, default=1, metavar="N",
                       help="recalibrate the threshold every N epochs and after the last "
                            "(latent-search models spend a search per held-out image)")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("eval", help="evaluate a checkpoint on a dataset's test split")
    evaluate.add_argument("--model", required=True, help="checkpoint (.safetensors)")
    _add_data_or_bags(evaluate, "dataset folder (its test split)",
                      "rosbag2 folders of good and defective parts (labels from our "
                      "recorder, or --label for all of them)")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--json", help="also write the metrics to this file")
    evaluate.add_argument("--out", help="folder for roc.png, gallery.png and metrics.json "
                                        "(default: <checkpoint>_eval next to the checkpoint)")
    evaluate.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    _add_depth_format_args(evaluate, " (default: what training recorded)")
    evaluate.set_defaults(func=cmd_eval)

    recal = sub.add_parser("calibrate", help="calibrate a checkpoint's threshold again on the "
                                             "held-out normal images of its training data")
    recal.add_argument("--model", required=True, help="checkpoint (.safetensors)")
    recal.add_argument("--data", required=True, help="the dataset folder it was trained on")
    recal.add_argument("--out", help="checkpoint to write (default: replace --model)")
    recal.add_argument("--k-sigma", type=float, default=3.0,
                       help="threshold = median + k * 1.4826 * MAD of the held-out scores")
    recal.add_argument("--max-false-alarm-rate", type=float, default=None, metavar="RATE",
                       help="threshold for at most this false-alarm rate on the held-out "
                            "normal images")
    recal.add_argument("--labeled", default=None, metavar="DIR",
                       help="F1-optimal threshold on this folder of good and defective parts "
                            "(good/ and one folder per defect type, or a dataset with test/); "
                            "keep it apart from the evaluation data")
    recal.add_argument("--score", default=None, metavar="SPEC",
                       help="switch the score head first (see train --score); a memory score "
                            "is fitted on the training images")
    recal.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    recal.add_argument("--device", default="auto")
    recal.set_defaults(func=cmd_calibrate)

    export = sub.add_parser("export-bag", help="rosbag2 of the camera topics -> a dataset "
                            "folder (MVTec layout, RGB-D)")
    export.add_argument("bag", nargs="+", help="rosbag2 folders (MCAP or sqlite3)")
    export.add_argument("--out", required=True)
    export.add_argument("--label", choices=["good", "defective"], default=None,
                        help="default: the label our recorder stored in each bag")
    export.add_argument("--split", choices=["train", "test"], default="train")
    _add_bag_topic_args(export)
    export.set_defaults(func=cmd_export_bag)

    export_model = sub.add_parser("export", help="export a checkpoint to ONNX or TorchScript "
                                  "(normalisation inside the graph) and compare it with eager")
    export_model.add_argument("checkpoint", help="checkpoint (.safetensors)")
    export_model.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    export_model.add_argument("-o", "--out", help="file to write (default: next to the "
                              "checkpoint, <name>.onnx or <name>.torchscript.pt)")
    export_model.add_argument("--device", default="cpu",
                              help="torchscript: the device the trace runs on (a trace keeps "
                                   "it); both: where the comparison with eager runs")
    export_model.set_defaults(func=cmd_export)

    synth = sub.add_parser("synth", help="write a synthetic RGB-D dataset (MVTec layout)")
    synth.add_argument("--out", required=True)
    synth.add_argument("--n-train", type=int, default=DEMO_DATASET["n_train"])
    synth.add_argument("--n-test-good", type=int, default=DEMO_DATASET["n_test_good"])
    synth.add_argument("--n-test-per-defect", type=int, default=DEMO_DATASET["n_test_per_defect"])
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--defects", nargs="+", choices=list(ALL_DEFECT_TYPES),
                       default=list(DEFECT_TYPES),
                       help="defect types of the test split (geo_dent, geo_bump and "
                            "missing_chunk change the depth only)")
    synth.add_argument("--placement", choices=["centered", "random"], default="centered",
                       help="random: the part anywhere on the table, any yaw")
    synth.add_argument("--depth-artifacts", action="store_true",
                       help="RealSense-like holes on dark surfaces and flying pixels at edges")
    synth.set_defaults(func=cmd_synth)

    demo = sub.add_parser("demo", help="synthetic scenes -> replay camera -> preprocess -> "
                                       "scorer; trains the default model first if needed")
    demo.add_argument("--model", help="checkpoint to use instead of the default model")
    demo.add_argument("--retrain", action="store_true", help="train the default model again")
    demo.add_argument("--frames", type=int, default=20, help="frames to score (half defective)")
    demo.add_argument("--output", default="demo_output", help="folder for heatmap images")
    demo.add_argument("--device", default="auto")
    demo.add_argument("--timeout", type=float, default=120.0)
    demo.add_argument("--verbose", action="store_true", help="show the nodes' own output")
    demo.set_defaults(func=cmd_demo)

    bringup = sub.add_parser("bringup", help="start the node graph without `ros2 launch`")
    bringup.add_argument("--camera", choices=CAMERAS, default="replay")
    bringup.add_argument("--model", default="", help="checkpoint (default: the demo's model)")
    bringup.add_argument("--geometry-model", default="",
                         help="a second checkpoint (trained with --mode height, or voxels) "
                              "scoring the same frames; /anomaly_score then carries both "
                              "models' fused verdict")
    bringup.add_argument("--device", default="auto")
    bringup.add_argument("--source", default="synthetic",
                         help="replay source: synthetic, a dataset folder, or a rosbag2 of the "
                              "camera topics (played at its recorded rate)")
    bringup.add_argument("--rate", type=float, default=5.0, help="replay rate in Hz")
    bringup.add_argument("--secure", action="store_true",
                         help="start every node with its SROS2 enclave /gan_anomaly/<node> "
                              "(ROS_SECURITY_ENABLE=true, a keystore from "
                              "config/sros2/policy.xml)")
    bringup.add_argument("--threshold", type=float, default=None,
                         help="decision threshold (default: the checkpoint's calibrated one)")
    bringup.add_argument("--composed", action="store_true",
                         help="preprocess and scorer in one process (model input handed over "
                              "in memory)")
    bringup.add_argument("--runtime", choices=("eager", "torchscript", "onnxruntime"),
                         default="eager", help="scorer runtime (exported ones need "
                                               "--exported-model)")
    bringup.add_argument("--exported-model", default="",
                         help="the file `gan-anomaly export` wrote")
    bringup.add_argument("--camera-queue", type=int, default=None,
                         help="frames kept per camera topic while preprocess is busy (default "
                              "5; 1: newest only)")
    bringup.set_defaults(func=cmd_bringup)

    from .bench.command import add_parser as add_bench_parser
    add_bench_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError) as exc:
        # Our errors (bad data folder, checkpoint, setting) carry a message meant for people.
        print(f"gan-anomaly {args.command}: error: {exc}", file=sys.stderr)
        return 2
    if args.command in ("train", "eval", "demo"):
        print(f"{args.command} took {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if args.command == "train":
        from .training import distributed
        if distributed.under_torchrun():
            distributed.end_process(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
