"""TransGAN training objectives on top of the shared classic / WGAN-GP losses.

TransGAN trains with the WGAN-GP loss (Jiang et al. 2021); the classic
non-saturating GAN loss is the alternative (hparam gan_loss). The test-time AnoGAN search loss
lives in ..latent_search.
"""

from __future__ import annotations

from typing import Callable, Dict

import torch

from ..gan_losses import discriminator_loss, generator_loss, gradient_penalty


def critic_loss(kind: str, critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                fake: torch.Tensor, gp_weight: float) -> Dict[str, torch.Tensor]:
    """Critic loss on real and (detached) generated images, + the gradient penalty for WGAN-GP.

    ``critic`` maps images to one logit each. Returns the total under "loss" and its parts.
    """
    adversarial = discriminator_loss(kind, critic(real), critic(fake))
    losses = {"loss_d": adversarial}
    if kind == "wgan-gp":
        # Gulrajani et al. 2017, eq. 3: lambda * (||grad D(x_hat)|| - 1)^2 on interpolates.
        losses["gradient_penalty"] = gradient_penalty(critic, real, fake, gp_weight)
    losses["loss"] = sum(losses.values())
    return losses


def generator_adversarial_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """-D(G(z)) for WGAN-GP, the non-saturating BCE for the classic loss."""
    return generator_loss(kind, fake_logits)
