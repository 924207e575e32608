"""Voxel GANomaly networks: 3D versions of the DCGAN stacks (models/dcgan.py) and of GANomaly's
generator (encoder -> decoder -> encoder) and discriminator (encoder + classifier)."""

from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from ..dcgan import dcgan_layout, supported_sizes
from ..ganomaly import torch_model as ganomaly_networks

# 3D activations grow with R^3: grids beyond 128 voxels a side are not worth building.
MAX_SIZE = 128


def check_voxel_size(size: int) -> int:
    """Grid sides the 3D stacks build: start * 2**n with start 4 to 7, 16 to 128 voxels
    (e.g. 32 or 64; the pyramid halves down to the start, like dcgan_layout for images)."""
    sizes = supported_sizes(16, MAX_SIZE)
    if int(size) not in sizes:
        raise ValueError(f"voxel grid size must be one of {sizes}, got {size}")
    return int(size)


def voxel_layout(size: int) -> Tuple[int, int]:
    """(start, halvings): R -> R/2 -> ... -> start (4 for powers of two)."""
    return dcgan_layout(check_voxel_size(size))


class Encoder3d(nn.Module):
    """Grid (C x R x R x R) -> latent (nz x 1 x 1 x 1), halving down to the start size;
    ``out_width`` and ``out_resolution`` describe the last feature map."""

    def __init__(self, size: int, channels: int, latent_dim: int, base_width: int,
                 final_conv: bool = True):
        super().__init__()
        start, _ = voxel_layout(size)
        layers = [nn.Conv3d(channels, base_width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        width, resolution = base_width, size // 2
        while resolution > start:
            layers += [nn.Conv3d(width, width * 2, 4, 2, 1, bias=False),
                       nn.BatchNorm3d(width * 2), nn.LeakyReLU(0.2, True)]
            width, resolution = width * 2, resolution // 2
        self.features = nn.Sequential(*layers)
        self.out_width, self.out_resolution = width, start
        self.final = (nn.Conv3d(width, latent_dim, start, 1, 0, bias=False) if final_conv
                      else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        return self.final(features) if self.final is not None else features


class Decoder3d(nn.Module):
    """Latent (nz x 1 x 1 x 1) -> grid (C x R x R x R) in [-1, 1], doubling from the start.

    Unlike the 2D DCGAN decoder it uses LeakyReLU and a biased last layer: most voxels of a
    grid hold the same extreme value (-1, free space), and with ReLU and no bias a short
    training run sometimes lost every unit of the last block and reconstructed all 0.
    """

    def __init__(self, size: int, channels: int, latent_dim: int, base_width: int):
        super().__init__()
        start, halvings = voxel_layout(size)
        width = base_width * 2 ** (halvings - 1)  # mirrors the encoder's widest layer
        layers = [nn.ConvTranspose3d(latent_dim, width, start, 1, 0, bias=False),
                  nn.BatchNorm3d(width), nn.LeakyReLU(0.2, True)]
        resolution = start
        while resolution < size // 2:
            layers += [nn.ConvTranspose3d(width, width // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm3d(width // 2), nn.LeakyReLU(0.2, True)]
            width, resolution = width // 2, resolution * 2
        layers += [nn.ConvTranspose3d(width, channels, 4, 2, 1, bias=True), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def Generator(size: int, channels: int, latent_dim: int, base_width: int) -> nn.Module:
    """GANomaly's encoder-decoder-encoder with the 3D stacks."""
    return ganomaly_networks.Generator(size, channels, latent_dim, base_width,
                                       encoder=Encoder3d, decoder=Decoder3d)


def Discriminator(size: int, channels: int, base_width: int) -> nn.Module:
    """GANomaly's discriminator with the 3D encoder: (probability of real, features)."""
    return ganomaly_networks.Discriminator(size, channels, base_width, encoder=Encoder3d,
                                           conv=nn.Conv3d)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation (normal 0.02), for the 3D layers."""
    if isinstance(module, (nn.Conv3d, nn.ConvTranspose3d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm3d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
