"""Does torch.compile pay for the scorer's model? Eager against compiled, side by side.

    python benchmarks/compile_speed.py                         # the default model, CPU
    python benchmarks/compile_speed.py --device cuda           # adds CUDA graphs (reduce-overhead)

One model.predict per image (batch 1, as the scorer runs), median over --repeats, for: eager;
torch.compile (inductor, default mode); on CUDA also mode "reduce-overhead", which replays the
model as a CUDA graph. Prints each median, its ratio to eager, the compile time and the largest
score difference to eager.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan_anomaly_ros.checkpoint import load_checkpoint  # noqa: E402
from gan_anomaly_ros.graph import default_model_path  # noqa: E402


def median_ms(predict, inputs, repeats: int, device) -> float:
    times = []
    with torch.no_grad():
        for i in range(repeats + 3):
            started = time.perf_counter()
            predict(inputs[i % len(inputs)][None])
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= 3:                      # the first calls warm up (and compile)
                times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = load_checkpoint(args.model, device=device).model.eval()
    inputs = torch.randn(8, model.channels, model.size, model.size, device=device)
    with torch.no_grad():
        reference = model.predict(inputs[:1]).scores
    eager = median_ms(model.predict, inputs, args.repeats, device)
    print(f"{args.model} on {device} ({torch.get_num_threads()} CPU threads), batch 1")
    print(f"  eager: {eager:.2f} ms")
    modes = ["default"] + (["reduce-overhead"] if device.type == "cuda" else [])
    for mode in modes:
        started = time.perf_counter()
        compiled = torch.compile(model.predict, mode=mode, dynamic=False)
        with torch.no_grad():
            scores = compiled(inputs[:1]).scores
        compile_s = time.perf_counter() - started
        ms = median_ms(compiled, inputs, args.repeats, device)
        print(f"  torch.compile mode={mode}: {ms:.2f} ms ({eager / ms:.2f}x eager), compiled "
              f"in {compile_s:.0f} s, largest score difference "
              f"{float((scores - reference).abs().max()):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
