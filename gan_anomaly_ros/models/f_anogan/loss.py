"""f-AnoGAN losses: WGAN-GP for G and C (phase 1), izi_f for E (phase 2)."""

from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from ..gan_losses import discriminator_loss, generator_loss, gradient_penalty


class CriticLoss(nn.Module):
    """WGAN-GP (Gulrajani et al. 2017, lambda=10): C(G(z)) - C(x) + GP; or classic BCE.

    Also reports "loss_g", the generator's loss on these fakes: free to compute, and logged on
    every step although G only updates every n_critic steps.
    """

    def __init__(self, gan_loss: str, gp_weight: float = 10.0):
        super().__init__()
        self.gan_loss, self.gp_weight = gan_loss, gp_weight

    def forward(self, critic, images, fakes) -> Dict[str, torch.Tensor]:
        fakes = fakes.detach()
        real_logits, _ = critic(images)
        fake_logits, _ = critic(fakes)
        loss = discriminator_loss(self.gan_loss, real_logits, fake_logits)
        loss_g = generator_loss(self.gan_loss, fake_logits.detach())
        if self.gan_loss != "wgan-gp":
            return {"loss_c": loss, "loss_g": loss_g}
        penalty = gradient_penalty(lambda x: critic(x)[0], images, fakes, self.gp_weight)
        # -loss estimates the Wasserstein distance between real and generated images.
        return {"loss_c": loss + penalty, "loss_g": loss_g, "wasserstein": -loss,
                "gradient_penalty": penalty}


class GeneratorLoss(nn.Module):
    """-C(G(z)) (WGAN) or BCE towards "real" (classic GAN)."""

    def __init__(self, gan_loss: str):
        super().__init__()
        self.gan_loss = gan_loss

    def forward(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return generator_loss(self.gan_loss, fake_logits)


def izif_residuals(images, reconstructions, features_real, features_fake, kappa: float = 1.0
                   ) -> Dict[str, torch.Tensor]:
    """Per-sample izi_f terms (the paper's encoder loss and anomaly score, kappa=1).

    image = 1/n ||x - G(E(x))||^2 (n pixels), features = 1/n_d ||f(x) - f(G(E(x)))||^2 (n_d
    features), izi_f = image + kappa * features. The same value is the training loss of E
    (batch mean) and the anomaly score A(x) (per sample).
    """
    image = ((images - reconstructions) ** 2).flatten(1).mean(dim=1)
    features = ((features_real - features_fake) ** 2).flatten(1).mean(dim=1)
    return {"izif": image + kappa * features, "image": image, "features": features}
