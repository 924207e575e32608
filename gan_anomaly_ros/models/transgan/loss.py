"""TransGAN training losses and the AnoGAN mapping loss used to score.

Training uses the shared classic / WGAN-GP losses (TransGAN trains with WGAN-GP, sec. 4).
Scoring follows AnoGAN (Schlegl et al. 2017, sec. 2.2): the loss of mapping an image x to the
latent space, per sample,
    L(z) = ||x - G(z)||_1 + lam * ||f(x) - f(G(z))||_1
with f the discriminator's token features (the "discrimination loss" of eq. 4).
"""

from __future__ import annotations

import torch


def mapping_loss(images: torch.Tensor, generated: torch.Tensor, features_real: torch.Tensor,
                 features_generated: torch.Tensor, lam: float) -> torch.Tensor:
    """Per-sample AnoGAN loss (B,): L1 residual + lam * L1 feature distance (means)."""
    residual = (images - generated).abs().flatten(1).mean(dim=1)
    feature = (features_real - features_generated).abs().flatten(1).mean(dim=1)
    return residual + lam * feature
