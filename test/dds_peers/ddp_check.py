"""Run under torchrun: trains a tiny model data-parallel, then checks all ranks agree.

Prints "RANKS_IDENTICAL world=N" on rank 0 when every rank ends with the same weights.
"""

import sys

import numpy as np
import torch
import torch.distributed as dist

from gan_anomaly_ros.perception.preprocessing import PreprocessConfig
from gan_anomaly_ros.training import TrainConfig, TrainingRun, distributed


def main(out_path):
    rng = np.random.default_rng(0)
    ramp = np.linspace(-0.8, 0.8, 32, dtype=np.float32)
    inputs = (ramp[None, None, None, :] * rng.uniform(0.2, 1, (24, 3, 1, 1))).astype(np.float32)
    inputs = np.ascontiguousarray(np.broadcast_to(inputs, (24, 3, 32, 32)))
    config = TrainConfig(epochs=2, batch_size=4, device="cpu", hparams={"base_width": 8,
                                                                        "latent_dim": 16})
    run = TrainingRun(inputs, PreprocessConfig(mode="rgb", size=32), config, out_path,
                      progress=False)
    run.run()
    flat = torch.cat([p.detach().flatten() for p in run.model.state_dict().values()
                      if p.is_floating_point()])
    gathered = [torch.zeros_like(flat) for _ in range(run.info.world_size)]
    dist.all_gather(gathered, flat)
    if run.info.is_main:
        same = all(torch.equal(gathered[0], g) for g in gathered[1:])
        print(f"{'RANKS_IDENTICAL' if same else 'RANKS_DIFFER'} world={run.info.world_size}",
              flush=True)
    distributed.shutdown(run.info)
    distributed.end_process(0)   # as `gan-anomaly train` does under torchrun


if __name__ == "__main__":
    main(sys.argv[1])
