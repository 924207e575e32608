"""AnoGAN networks: the DCGAN generator and a discriminator that also returns its features.

The generator is dcgan.Decoder (z: latent_dim x 1 x 1 -> C x S x S in [-1, 1]), as in the paper
(DCGAN, Radford et al. 2016). The discriminator's last feature map (before the logit) is the
"intermediate layer f" of AnoGAN's feature-matching loss (eq. 4).
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from ..dcgan import Encoder


class Discriminator(nn.Module):
    """DCGAN discriminator / WGAN-GP critic: x -> (raw logit (B,), features (B x W x 4 x 4)).

    ``norm="batch"`` for the classic GAN; a WGAN-GP critic needs "layer" or "none" (the
    gradient penalty is per sample, BatchNorm mixes the samples).
    """

    def __init__(self, size: int, channels: int, base_width: int, norm: str = "batch"):
        super().__init__()
        self.encoder = Encoder(size, channels, 1, base_width, final_conv=False, norm=norm)
        self.classifier = nn.Conv2d(self.encoder.out_width, 1, 4, 1, 0, bias=False)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(x)
        return self.classifier(features).view(-1), features
