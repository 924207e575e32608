"""`gan-anomaly bench`: arguments and the loop over cases."""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from ..graph import default_model_path
from .run import GRAPHS, RUNTIMES, BenchCase, BenchError, BenchSettings, run_case


def _size(text: str):
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 848x480, got "
                                         f"{text!r}") from None
    return width, height


def add_parser(sub) -> None:
    bench = sub.add_parser(
        "bench", help="end-to-end latency of the node graph over DDS (camera -> verdict)",
        description="Brings up replay camera -> preprocess -> scorer as separate processes "
                    "(or preprocess + scorer composed) for each case and measures, over "
                    "DDS: latency from the camera stamp to the receipt of AnomalyScore (p50, "
                    "p95, p99), verdicts per second, frames lost at each stage, stage times, "
                    "CPU and memory per node. Prints a table; --json/--markdown write it.")
    bench.add_argument("--graphs", nargs="+", choices=GRAPHS, default=list(GRAPHS),
                       help="2d: the default model; voxel: --voxel-model; 3d: the default "
                            "model with everything rviz shows subscribed")
    bench.add_argument("--rates", nargs="+", type=float, default=[30.0, 60.0, 90.0])
    bench.add_argument("--sizes", nargs="+", type=_size, default=[(640, 480), (848, 480)],
                       metavar="WxH")
    bench.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=["eager"],
                       help="torchscript/onnxruntime export the model first (gan-anomaly export)")
    bench.add_argument("--layout", choices=("separate", "composed", "both"), default="separate",
                       help="preprocess and scorer as two processes, one, or both measured")
    bench.add_argument("--model", default="", help="2d/3d checkpoint (default: the demo's)")
    bench.add_argument("--voxel-model", default="", help="voxel checkpoint for --graphs voxel")
    bench.add_argument("--device", default="auto")
    bench.add_argument("--duration", type=float, default=60.0, help="seconds measured per case")
    bench.add_argument("--warmup", type=float, default=5.0,
                       help="seconds after the first verdict before measuring")
    bench.add_argument("--torch-threads", type=int, default=0,
                       help="scorer torch threads (0: torch's default)")
    bench.add_argument("--camera-queue", type=int, default=5,
                       help="preprocess camera_queue: frames kept per camera topic while busy "
                            "(1: newest only, lowest latency)")
    bench.add_argument("--json", type=Path, default=None, help="write every figure here")
    bench.add_argument("--markdown", type=Path, default=None, help="write the table here")
    bench.add_argument("--profile", type=Path, default=None, metavar="DIR",
                       help="sample every node with py-spy during the window; raw stacks and "
                            "a summary of the top functions go to DIR")
    bench.set_defaults(func=cmd_bench)


def cases(args):
    layouts = {"separate": [False], "composed": [True], "both": [False, True]}[args.layout]
    graphs = [g for g in args.graphs if g != "voxel" or args.voxel_model]
    if len(graphs) < len(args.graphs):
        print("bench: no --voxel-model given: the voxel graph is skipped")
    for graph, (width, height), rate, runtime, composed in itertools.product(
            graphs, args.sizes, args.rates, args.runtimes, layouts):
        if graph == "voxel" and runtime != "eager":
            continue
        yield BenchCase(graph, rate, width, height, runtime, composed)


def cmd_bench(args) -> int:
    from .report import target_lines, text_table, write_json, write_markdown

    model = args.model or str(default_model_path())
    if not Path(model).is_file():
        raise FileNotFoundError(f"model {model} not found (run `gan-anomaly demo` once, or "
                                "give --model)")
    settings = BenchSettings(model=model, voxel_model=args.voxel_model or None,
                             device=args.device, duration=args.duration, warmup=args.warmup,
                             torch_threads=args.torch_threads, camera_queue=args.camera_queue,
                             profile_dir=args.profile)
    exported_runtimes = [r for r in args.runtimes if r != "eager"]
    if exported_runtimes:
        from .exports import export_for_bench
        # For the scorer's device: a TorchScript trace keeps the device it was made on.
        settings.exported = export_for_bench(model, exported_runtimes, args.device)
    plan = list(cases(args))
    print(f"bench: {len(plan)} case(s) of {args.duration:g} s each")
    results = []
    for index, case in enumerate(plan, 1):
        print(f"[{index}/{len(plan)}] {case.label} ...", flush=True)
        try:
            result = run_case(case, settings)
        except BenchError as exc:
            print(f"  failed: {exc}")
            continue
        results.append(result)
        latency = result["latency_ms"]
        print(f"  p50 {latency['p50']:.1f} ms, p99 {latency['p99']:.1f} ms, scored "
              f"{result['scored']}/{result['frames_sent']}, {result['verdicts_per_s']:.1f} "
              "verdicts/s", flush=True)
    print()
    print(text_table(results))
    for line in target_lines(results):
        print(line)
    summary = {k: v for k, v in vars(args).items() if k != "func"}
    if args.json:
        write_json(args.json, results, summary)
        print(f"wrote {args.json}")
    if args.markdown:
        write_markdown(args.markdown, results, summary)
        print(f"wrote {args.markdown}")
    return 0 if len(results) == len(plan) else 1
