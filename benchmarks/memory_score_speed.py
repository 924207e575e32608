"""Memory-score speed: the nearest-neighbour search of FeatureMemory as it was (torch.cdist over
the whole bank, then topk) against the current one (one fused matrix product on a transposed
copy of the bank, argmin), side by side on the same inputs, in one run.

    python benchmarks/memory_score_speed.py                   # the default model, 1 and 2 threads
    python benchmarks/memory_score_speed.py --model M.safetensors --repeats 50

Prints the median time of one model.predict per image (batch 1, as the scorer runs) for each
variant and thread count, their ratio, and the largest score and map difference between them
(the chosen neighbours' distances are measured directly in both, so they should agree).
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
from gan_anomaly_ros.models.feature_memory import FeatureMemory  # noqa: E402


def cdist_candidates(memory: FeatureMemory, queries: torch.Tensor, k: int) -> torch.Tensor:
    """The search before the change: the full distance matrix, then the k smallest."""
    bank = memory.bank if queries.dim() == 2 else memory.bank.unsqueeze(0)
    return torch.cdist(queries, bank).topk(k, dim=-1, largest=False).indices


VARIANTS = {"cdist (before)": cdist_candidates, "fused matmul (now)": FeatureMemory._candidates}


def time_predict(model, inputs, repeats: int) -> float:
    with torch.no_grad():
        for i in range(3):
            model.predict(inputs[i % len(inputs)][None])
        times = []
        for i in range(repeats):
            started = time.perf_counter()
            model.predict(inputs[i % len(inputs)][None])
            times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    checkpoint = load_checkpoint(args.model, device="cpu")
    model = checkpoint.model.eval()
    banks = [tuple(b.shape) for n, b in model.named_buffers() if n.endswith("memory.bank")]
    print(f"model {checkpoint.model.name} ({args.model}), memory banks {banks}, "
          f"input {checkpoint.preprocessing.input_shape}")
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand((8, *checkpoint.preprocessing.input_shape), generator=generator) * 2 - 1
    original = FeatureMemory._candidates
    outputs = {}
    try:
        for threads in args.threads:
            torch.set_num_threads(threads)
            medians = {}
            for name, candidates in VARIANTS.items():
                FeatureMemory._candidates = candidates
                medians[name] = time_predict(model, inputs, args.repeats)
                with torch.no_grad():
                    outputs[name] = model.predict(inputs)
            before, now = medians.values()
            print(f"threads {threads}: " + ", ".join(f"{n} {m:.2f} ms" for n, m in
                                                     medians.items())
                  + f"; speed-up {before / now:.2f}x")
    finally:
        FeatureMemory._candidates = original
    a, b = outputs.values()
    print(f"max |score difference| {(a.scores - b.scores).abs().max().item():.3g}, max |map "
          f"difference| {(a.anomaly_maps - b.anomaly_maps).abs().max().item():.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
