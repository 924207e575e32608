"""Adversarial objectives shared by the GAN models: classic GAN or WGAN-GP (an hparam).

Discriminators/critics return raw scores (logits); the classic loss applies the sigmoid inside
binary_cross_entropy_with_logits, which is numerically safer than a Sigmoid layer.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.nn import functional as F

GAN_LOSSES = ("gan", "wgan-gp")


def check_gan_loss(kind: str) -> str:
    if kind not in GAN_LOSSES:
        raise ValueError(f"gan_loss must be one of {GAN_LOSSES}, got {kind!r}")
    return kind


def discriminator_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor
                       ) -> torch.Tensor:
    if kind == "wgan-gp":
        return fake_logits.mean() - real_logits.mean()
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    if kind == "wgan-gp":
        return -fake_logits.mean()
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, weight: float = 10.0) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): weight * (||grad critic(x_hat)|| - 1)^2 on interpolates.

    ``critic`` maps a batch to one logit per sample. ``real``/``fake`` may be tensors or, for
    joint critics on (x, z) pairs, call this once per input with a closure over the other.
    """
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device,
                       dtype=real.dtype)
    interpolates = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(interpolates)
    (gradients,) = torch.autograd.grad(scores.sum(), interpolates, create_graph=True)
    norms = gradients.flatten(1).norm(2, dim=1)
    return weight * ((norms - 1) ** 2).mean()
