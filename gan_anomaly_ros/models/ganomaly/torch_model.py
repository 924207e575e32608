"""GANomaly networks: the encoder-decoder-encoder generator and the discriminator."""

from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from ..dcgan import Decoder, Encoder


class Generator(nn.Module):
    """Encoder -> decoder -> encoder: returns (reconstruction, z, z of the reconstruction).
    ``encoder``/``decoder``: the DCGAN stacks (2D); the voxel GAN passes its 3D ones."""

    def __init__(self, size: int, channels: int, latent_dim: int, base_width: int,
                 encoder=Encoder, decoder=Decoder):
        super().__init__()
        self.encoder1 = encoder(size, channels, latent_dim, base_width)
        self.decoder = decoder(size, channels, latent_dim, base_width)
        self.encoder2 = encoder(size, channels, latent_dim, base_width)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        latent = self.encoder1(x)
        reconstruction = self.decoder(latent)
        return reconstruction, latent, self.encoder2(reconstruction)


class Discriminator(nn.Module):
    """DCGAN discriminator: returns (probability of real, last feature map). The voxel GAN
    passes its 3D encoder and Conv3d."""

    def __init__(self, size: int, channels: int, base_width: int, encoder=Encoder,
                 conv=nn.Conv2d):
        super().__init__()
        self.encoder = encoder(size, channels, 1, base_width, final_conv=False)
        self.classifier = nn.Sequential(
            conv(self.encoder.out_width, 1, self.encoder.out_resolution, 1, 0, bias=False),
            nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(x)
        return self.classifier(features).view(-1), features
