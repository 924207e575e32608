"""GANomaly losses (paper section 3.2): adversarial (feature matching), contextual, encoder."""

from __future__ import annotations

from typing import Dict

import torch
from torch import nn
from torch.nn import functional as F


class GeneratorLoss(nn.Module):
    """w_adv * ||f(x) - f(x^)||_2 + w_con * ||x - x^||_1 + w_enc * ||z - z^||_2."""

    def __init__(self, w_adv: float = 1.0, w_con: float = 50.0, w_enc: float = 1.0):
        super().__init__()
        self.w_adv, self.w_con, self.w_enc = w_adv, w_con, w_enc

    def forward(self, images, reconstructions, latent, latent_reconstructed,
                features_real, features_fake) -> Dict[str, torch.Tensor]:
        adversarial = F.mse_loss(features_fake, features_real)
        contextual = F.l1_loss(reconstructions, images)
        encoder = F.mse_loss(latent_reconstructed, latent)
        total = self.w_adv * adversarial + self.w_con * contextual + self.w_enc * encoder
        return {"loss_g": total, "adversarial": adversarial, "contextual": contextual,
                "encoder": encoder}


class DiscriminatorLoss(nn.Module):
    """Binary cross-entropy: real images -> 1, reconstructions -> 0."""

    def forward(self, prob_real: torch.Tensor, prob_fake: torch.Tensor) -> torch.Tensor:
        return (F.binary_cross_entropy(prob_real, torch.ones_like(prob_real))
                + F.binary_cross_entropy(prob_fake, torch.zeros_like(prob_fake))) * 0.5
