"""BiGAN networks (Donahue et al. 2017; Dumoulin et al. 2017 "ALI"), sized like EGBAD.

G: z -> x (DCGAN decoder), E: x -> z (DCGAN encoder), and a joint discriminator D(x, z) that
sees (image, latent) pairs: real pairs (x, E(x)) against generated pairs (G(z), z).
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from ..dcgan import Decoder, Encoder


class JointDiscriminator(nn.Module):
    """D(x, z) -> (logit, joint features), EGBAD's D_x / D_z / D_xz layout (Zenati et al. 2018).

    The image branch is a DCGAN encoder without its final conv followed by a 4x4 conv to
    ``feature_dim``; the latent branch is a two-layer MLP. The joint features (the layer before
    the logit) feed the G/E feature loss and the anomaly score's feature term.
    """

    def __init__(self, size: int, channels: int, latent_dim: int, base_width: int,
                 feature_dim: int, norm: str):
        super().__init__()
        encoder = Encoder(size, channels, 1, base_width, final_conv=False, norm=norm)
        self.image_branch = nn.Sequential(
            encoder, nn.Conv2d(encoder.out_width, feature_dim, encoder.out_resolution, 1, 0),
            nn.LeakyReLU(0.2), nn.Flatten())
        self.latent_branch = nn.Sequential(
            nn.Flatten(), nn.Linear(latent_dim, feature_dim), nn.LeakyReLU(0.2),
            nn.Linear(feature_dim, feature_dim), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(nn.Linear(2 * feature_dim, 2 * feature_dim), nn.LeakyReLU(0.2))
        self.head = nn.Linear(2 * feature_dim, 1)

    @property
    def image_encoder(self) -> Encoder:
        """The convolutional image branch (its feature maps serve memory scores)."""
        return self.image_branch[0]

    def forward(self, images: torch.Tensor, latents: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        features = self.joint(torch.cat([self.image_branch(images),
                                         self.latent_branch(latents)], dim=1))
        return self.head(features).view(-1), features


class BiGANNetworks(nn.Module):
    """The three networks; latents are nz x 1 x 1 like the DCGAN blocks expect."""

    def __init__(self, size: int, channels: int, latent_dim: int, base_width: int,
                 feature_dim: int, d_norm: str):
        super().__init__()
        self.latent_dim = latent_dim
        self.generator = Decoder(size, channels, latent_dim, base_width)
        self.encoder = Encoder(size, channels, latent_dim, base_width)
        self.discriminator = JointDiscriminator(size, channels, latent_dim, base_width,
                                                feature_dim, d_norm)

    def sample_latent(self, batch_size: int, like: torch.Tensor) -> torch.Tensor:
        # EGBAD draws z from a standard normal prior.
        return torch.randn(batch_size, self.latent_dim, 1, 1, device=like.device,
                           dtype=like.dtype)

    def reconstruct(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(G(E(x)), E(x))."""
        latents = self.encoder(images)
        return self.generator(latents), latents
