"""Tiny stripe images and a short training loop for the AnoGAN and ADGAN tests."""

from __future__ import annotations

import math

import torch
from torch import nn

SIZE = 32
SMALL = {"base_width": 8, "latent_dim": 16}


from single_thread import one_thread  # noqa: F401 (re-exported fixture)


def normal_images(count: int, channels: int, seed: int) -> torch.Tensor:
    """Dark horizontal stripes at a random phase with a ramp and a little noise."""
    g = torch.Generator().manual_seed(seed)
    phase = torch.rand(count, 1, 1, 1, generator=g) * 2 * math.pi
    rows = torch.linspace(0, 2 * math.pi, SIZE).view(1, 1, SIZE, 1)
    ramp = torch.linspace(0, 1, SIZE).view(1, 1, 1, SIZE)
    images = -0.5 + 0.25 * torch.sin(2 * rows + phase) + 0.2 * ramp
    images = images + 0.03 * torch.randn(count, channels, SIZE, SIZE, generator=g)
    return images.clamp(-1, 1)


def with_square(images: torch.Tensor, half: int = 5) -> torch.Tensor:
    """The clear defect: a saturated bright square in the middle."""
    out = images.clone()
    c = SIZE // 2
    out[..., c - half:c + half, c - half:c + half] = 1.0
    return out


def train(model: nn.Module, data: torch.Tensor, steps: int, seed: int = 0) -> None:
    torch.manual_seed(seed)
    optimizers = model.configure_optimizers()
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        model.training_step(data[torch.randint(0, len(data), (16,), generator=order)],
                            optimizers)
    model.zero_grad(set_to_none=True)  # so that tests can tell a gradient made by predict
    model.eval()


def snapshot(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
