"""OCR-GAN objectives (the authors' code, following Skip-GANomaly) and its anomaly score."""

from __future__ import annotations

from typing import Dict

import torch
from torch.nn import functional as F

from ..gan_losses import discriminator_loss, generator_loss


def generator_objective(images, reconstructions, fake_logits, features_real, features_fake,
                        w_adv: float, w_con: float, w_lat: float) -> Dict[str, torch.Tensor]:
    """w_adv * adversarial + w_con * |x - x^|_1 + w_lat * |f(x) - f(x^)|_2^2."""
    adversarial = generator_loss("gan", fake_logits)
    contextual = F.l1_loss(reconstructions, images)
    latent = F.mse_loss(features_fake, features_real)
    total = w_adv * adversarial + w_con * contextual + w_lat * latent
    return {"loss_g": total, "adversarial": adversarial, "contextual": contextual,
            "latent": latent}


def discriminator_objective(real_logits, fake_logits) -> torch.Tensor:
    return discriminator_loss("gan", real_logits, fake_logits)


def anomaly_score(images, reconstructions, features_real, features_fake,
                  score_lambda: float = 0.9) -> torch.Tensor:
    """lambda * mean (x - x^)^2 + (1 - lambda) * mean (f(x) - f(x^))^2 per image (the authors'
    test code, lambda = 0.9; they min-max scale over the test set, which a live scorer
    cannot: the calibration picks the threshold instead)."""
    reconstruction = ((images - reconstructions) ** 2).flatten(1).mean(dim=1)
    latent = ((features_real - features_fake) ** 2).flatten(1).mean(dim=1)
    return score_lambda * reconstruction + (1.0 - score_lambda) * latent
