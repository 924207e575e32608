"""Adversarial training losses of the DCGAN that AnoGAN and ADGAN train on normal images.

Classic GAN (Goodfellow et al. 2014, non-saturating generator loss) or WGAN-GP (Gulrajani et
al. 2017: critic loss E[D(fake)] - E[D(real)] + gp_weight * gradient penalty), both on raw
logits via the shared gan_losses. The test-time search loss lives in ..latent_search.
"""

from __future__ import annotations

import torch

from ..gan_losses import discriminator_loss, generator_loss, gradient_penalty
from .torch_model import Discriminator


def critic_loss(discriminator: Discriminator, real: torch.Tensor, fake: torch.Tensor,
                kind: str, gp_weight: float = 10.0) -> torch.Tensor:
    """Discriminator (critic) loss on a real and a generated batch (fake is detached)."""
    fake = fake.detach()
    real_logits, _ = discriminator(real)
    fake_logits, _ = discriminator(fake)
    loss = discriminator_loss(kind, real_logits, fake_logits)
    if kind == "wgan-gp":
        loss = loss + gradient_penalty(lambda x: discriminator(x)[0], real, fake, gp_weight)
    return loss


def adversarial_loss(discriminator: Discriminator, fake: torch.Tensor, kind: str
                     ) -> torch.Tensor:
    """Generator loss: fool the discriminator (gradients reach the generator through fake)."""
    fake_logits, _ = discriminator(fake)
    return generator_loss(kind, fake_logits)
