"""OCR-GAN's anomaly score. Its training objectives are Skip-GANomaly's (the authors' code
follows it): the model uses skip_ganomaly.loss.GeneratorLoss / DiscriminatorLoss."""

from __future__ import annotations

import torch


def anomaly_score(images, reconstructions, features_real, features_fake,
                  score_lambda: float = 0.9) -> torch.Tensor:
    """lambda * mean (x - x^)^2 + (1 - lambda) * mean (f(x) - f(x^))^2 per image (the authors'
    test code, lambda = 0.9; they min-max scale over the test set, which a live scorer
    cannot: the calibration picks the threshold instead)."""
    reconstruction = ((images - reconstructions) ** 2).flatten(1).mean(dim=1)
    latent = ((features_real - features_fake) ** 2).flatten(1).mean(dim=1)
    return score_lambda * reconstruction + (1.0 - score_lambda) * latent
