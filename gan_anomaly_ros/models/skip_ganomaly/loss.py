"""Skip-GANomaly training objectives and anomaly score."""

from __future__ import annotations

from typing import Dict

import torch
from torch import nn
from torch.nn import functional as F

from ..gan_losses import discriminator_loss, generator_loss, gradient_penalty


class GeneratorLoss(nn.Module):
    """L = w_adv * L_adv + w_con * L_con + w_lat * L_lat (the paper's total generator loss).

    - L_adv: the generator's adversarial term on the discriminator's logits for x^
      (BCE towards "real", or -D(x^) for WGAN-GP), as the authors' code does.
    - L_con: ||x - x^||_1, contextual (reconstruction) loss.
    - L_lat: ||f(x) - f(x^)||_2, the discriminator's last feature maps.
    Defaults w_adv=1, w_con=50, w_lat=1, as in the authors' code: reconstruction dominates.
    """

    def __init__(self, gan_loss: str, w_adv: float = 1.0, w_con: float = 50.0,
                 w_lat: float = 1.0):
        super().__init__()
        self.gan_loss = gan_loss
        self.w_adv, self.w_con, self.w_lat = w_adv, w_con, w_lat

    def forward(self, images, reconstructions, fake_logits, features_real, features_fake
                ) -> Dict[str, torch.Tensor]:
        adversarial = generator_loss(self.gan_loss, fake_logits)
        contextual = F.l1_loss(reconstructions, images)
        latent = F.mse_loss(features_fake, features_real)
        total = self.w_adv * adversarial + self.w_con * contextual + self.w_lat * latent
        return {"loss_g": total, "adversarial": adversarial, "contextual": contextual,
                "latent": latent}


class DiscriminatorLoss(nn.Module):
    """Classic BCE (real -> 1, x^ -> 0) or WGAN-GP (D(x^) - D(x) + gradient penalty)."""

    def __init__(self, gan_loss: str, gp_weight: float = 10.0):
        super().__init__()
        self.gan_loss, self.gp_weight = gan_loss, gp_weight

    def forward(self, discriminator, images, reconstructions) -> Dict[str, torch.Tensor]:
        reconstructions = reconstructions.detach()
        real_logits, _ = discriminator(images)
        fake_logits, _ = discriminator(reconstructions)
        loss = discriminator_loss(self.gan_loss, real_logits, fake_logits)
        if self.gan_loss != "wgan-gp":
            return {"loss_d": loss}
        penalty = gradient_penalty(lambda x: discriminator(x)[0], images, reconstructions,
                                   self.gp_weight)
        return {"loss_d": loss + penalty, "gradient_penalty": penalty}


def anomaly_score(images, reconstructions, features_real, features_fake,
                  score_lambda: float = 0.9) -> torch.Tensor:
    """A(x) = lambda * R(x) + (1 - lambda) * L(x), per sample, lambda = 0.9.

    R(x) = mean |x - x^| (the contextual loss), L(x) = mean (f(x) - f(x^))^2 (the latent loss).
    The paper then min-max scales A over the test set; a live scorer cannot, so the raw value is
    returned and the calibration step picks the threshold.
    """
    reconstruction = (images - reconstructions).abs().flatten(1).mean(dim=1)
    latent = ((features_real - features_fake) ** 2).flatten(1).mean(dim=1)
    return score_lambda * reconstruction + (1.0 - score_lambda) * latent
