"""GANomaly networks: the encoder-decoder-encoder generator and the discriminator."""

from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from ..dcgan import Decoder, Encoder


class Generator(nn.Module):
    """Encoder -> decoder -> encoder: returns (reconstruction, z, z of the reconstruction)."""

    def __init__(self, size: int, channels: int, latent_dim: int, base_width: int):
        super().__init__()
        self.encoder1 = Encoder(size, channels, latent_dim, base_width)
        self.decoder = Decoder(size, channels, latent_dim, base_width)
        self.encoder2 = Encoder(size, channels, latent_dim, base_width)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        latent = self.encoder1(x)
        reconstruction = self.decoder(latent)
        return reconstruction, latent, self.encoder2(reconstruction)


class Discriminator(nn.Module):
    """DCGAN discriminator: returns (probability of real, last feature map)."""

    def __init__(self, size: int, channels: int, base_width: int):
        super().__init__()
        self.encoder = Encoder(size, channels, 1, base_width, final_conv=False)
        self.classifier = nn.Sequential(
            nn.Conv2d(self.encoder.out_width, 1, self.encoder.out_resolution, 1, 0,
                      bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(x)
        return self.classifier(features).view(-1), features
