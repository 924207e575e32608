"""ADGAN scoring speed: the batched search (vmap over B * n_seed generator copies) against the
sequential reference (a loop over inputs and seeds), on the same inputs, in one run.

    python benchmarks/adgan_speed.py                     # RGB-D 64 px, reference hparams
    python benchmarks/adgan_speed.py --threads 1 --batch 16 --repeats 5
    python benchmarks/adgan_speed.py --train-steps 50    # a briefly trained generator

Each repeat times both implementations on the same batch (alternating which goes first, so a
change in machine load hits both alike) and prints ms per image; the summary gives the medians,
their ratio and the largest score difference between the two. Nothing is written to disk.
The load average is printed before and after: on a shared machine, compare runs only at
similar load. It also counts the floating-point operations of one image's search
(torch.utils.flop_counter) and prints the rate each implementation reaches: both do the same
arithmetic, so the speed-up can never exceed what batching adds to the device's throughput
(large on a GPU, where one small call leaves most of it idle; small on a 2-core CPU, where the
sequential loop already runs near its peak). `--device cuda` runs it on a GPU.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan_anomaly_ros.models.adgan import Adgan  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--channels", type=int, default=4, help="1 gray, 3 RGB, 4 RGB-D")
    parser.add_argument("--size", type=int, default=64, help="input side (see dcgan.supported_sizes)")
    parser.add_argument("--batch", type=int, default=8, help="images scored per call")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's own choice)")
    parser.add_argument("--base-width", type=int, default=32, help="model hparam base_width")
    parser.add_argument("--latent-dim", type=int, default=100, help="model hparam latent_dim")
    parser.add_argument("--n-seed", type=int, default=3, help="ADGAN starts per input")
    parser.add_argument("--k", type=int, default=19, help="ADGAN steps per start")
    parser.add_argument("--lr-z", type=float, default=5e-2)
    parser.add_argument("--lr-theta", type=float, default=6e-9)
    parser.add_argument("--max-copies", type=int, default=None,
                        help="generator copies per batched pass (default: the model's choice,"
                             " Adgan.copies_per_pass; 0: all in one pass)")
    parser.add_argument("--train-steps", type=int, default=0,
                        help="GAN training steps on noise images first (0: random init)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    return parser.parse_args(argv)


def build_model(args) -> Adgan:
    torch.manual_seed(args.seed)
    model = Adgan(args.channels, args.size, n_seed=args.n_seed, k=args.k, lr_z=args.lr_z,
                  lr_theta=args.lr_theta, base_width=args.base_width,
                  latent_dim=args.latent_dim)
    if args.train_steps:
        optimizers = model.configure_optimizers()
        model.train()
        for _ in range(args.train_steps):
            model.training_step(inputs(16, args, seed=args.seed + 1), optimizers)
    # No stale training gradients: the sequential reference deep-copies the generator.
    model.zero_grad(set_to_none=True)
    return model.eval()


def inputs(count: int, args, seed: int) -> torch.Tensor:
    """Smooth random images in [-1, 1] (the search's cost does not depend on the content)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, args.channels, 8, 8, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=args.size, mode="bilinear",
                                           align_corners=False)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(model: Adgan, batch: torch.Tensor, batched: bool, max_copies="auto"):
    synchronize(batch.device)
    started = time.perf_counter()
    with torch.no_grad():
        scores = model.search(batch, batched=batched, max_copies=max_copies).losses.mean(dim=1)
    synchronize(batch.device)
    return (time.perf_counter() - started) * 1000.0 / batch.shape[0], scores


def flops_per_image(model: Adgan, image: torch.Tensor) -> int:
    """Floating-point operations of one image's search (all seeds and steps), counted on the
    sequential reference (the batched one does the same arithmetic as grouped convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.search(image, batched=False)
    return counter.get_total_flops()


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = build_model(args).to(device)
    batch = inputs(args.batch, args, seed=args.seed + 2).to(device)
    params = sum(p.numel() for p in model.generator.parameters())
    if args.max_copies is None:
        max_copies = model.copies_per_pass(batch.device)
    else:
        max_copies = args.max_copies or None
    copies = args.batch * args.n_seed
    inputs_per_pass = args.batch if max_copies is None else max(1, max_copies // args.n_seed)
    per_pass = min(args.batch, inputs_per_pass) * args.n_seed
    print(f"config: channels={args.channels} size={args.size} batch={args.batch} "
          f"repeats={args.repeats} base_width={args.base_width} latent_dim={args.latent_dim} "
          f"n_seed={args.n_seed} k={args.k} lr_z={args.lr_z} lr_theta={args.lr_theta} "
          f"train_steps={args.train_steps}")
    print(f"generator parameters: {params}; {copies} generator copies per batch, "
          f"{per_pass} per batched pass")
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, "
          f"cpus={os.cpu_count()}, {platform.processor() or platform.machine()}, "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    # Warm-up: vmap's first call and oneDNN's kernel choices are not part of the cost.
    timed(model, batch[:1], batched=True, max_copies=max_copies)
    timed(model, batch[:1], batched=False)

    times = {"batched": [], "sequential": []}
    max_diff = 0.0
    for repeat in range(args.repeats):
        order = (True, False) if repeat % 2 == 0 else (False, True)
        scores = {}
        for batched in order:
            name = "batched" if batched else "sequential"
            ms, scores[name] = timed(model, batch, batched, max_copies)
            times[name].append(ms)
        max_diff = max(max_diff, (scores["batched"] - scores["sequential"]).abs().max().item())
        print(f"repeat {repeat + 1}: batched {times['batched'][-1]:.1f} ms/image, "
              f"sequential {times['sequential'][-1]:.1f} ms/image")

    batched_ms = statistics.median(times["batched"])
    sequential_ms = statistics.median(times["sequential"])
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"median batched:    {batched_ms:9.1f} ms/image")
    print(f"median sequential: {sequential_ms:9.1f} ms/image")
    print(f"speed-up (sequential / batched): {sequential_ms / batched_ms:.2f}x")
    flops = flops_per_image(model, batch[:1])
    print(f"work per image: {flops / 1e9:.2f} GFLOP; rate reached: batched "
          f"{flops / batched_ms / 1e6:.1f} GFLOP/s, sequential {flops / sequential_ms / 1e6:.1f}"
          f" GFLOP/s (device {device})")
    print(f"max |score difference|: {max_diff:.3g}")
    return 0 if math.isfinite(max_diff) and max_diff <= 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
