"""DCGAN building blocks shared by the GAN models: a halving encoder, a doubling decoder."""

from __future__ import annotations

import math

import torch
from torch import nn

NORMS = ("batch", "layer", "none")


def _norm(kind: str, width: int) -> nn.Module:
    # WGAN-GP critics must not use BatchNorm (the penalty is per sample): "layer" or "none".
    if kind == "batch":
        return nn.BatchNorm2d(width)
    if kind == "layer":
        return nn.GroupNorm(1, width)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


def check_size(size: int) -> int:
    """DCGAN stacks halve the image down to 4x4, so the size must be a power of two."""
    if size < 16 or size > 512 or 2 ** int(round(math.log2(size))) != size:
        raise ValueError(f"image size must be a power of two between 16 and 512, got {size}")
    return size


class Encoder(nn.Module):
    """Image (C x S x S) -> latent (nz x 1 x 1), halving the resolution down to 4x4."""

    def __init__(self, size: int, channels: int, latent_dim: int, base_width: int,
                 final_conv: bool = True, norm: str = "batch"):
        super().__init__()
        check_size(size)
        layers = [nn.Conv2d(channels, base_width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        width, resolution = base_width, size // 2
        while resolution > 4:
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                       _norm(norm, width * 2), nn.LeakyReLU(0.2, True)]
            width, resolution = width * 2, resolution // 2
        self.features = nn.Sequential(*layers)
        self.out_width = width
        self.final = nn.Conv2d(width, latent_dim, 4, 1, 0, bias=False) if final_conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        return self.final(features) if self.final is not None else features


class Decoder(nn.Module):
    """Latent (nz x 1 x 1) -> image (C x S x S) in [-1, 1], doubling from 4x4."""

    def __init__(self, size: int, channels: int, latent_dim: int, base_width: int):
        super().__init__()
        check_size(size)
        width = base_width * size // 8  # mirrors the encoder's widest layer
        layers = [nn.ConvTranspose2d(latent_dim, width, 4, 1, 0, bias=False),
                  nn.BatchNorm2d(width), nn.ReLU(True)]
        resolution = 4
        while resolution < size // 2:
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width, resolution = width // 2, resolution * 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """DCGAN discriminator/critic: image -> (one raw logit per image, last feature map).

    ``norm="batch"`` for the classic GAN; a WGAN-GP critic needs "layer" or "none" (the
    gradient penalty is per sample, BatchNorm mixes the samples).
    """

    def __init__(self, size: int, channels: int, base_width: int, norm: str = "batch"):
        super().__init__()
        self.encoder = Encoder(size, channels, 1, base_width, final_conv=False, norm=norm)
        self.classifier = nn.Conv2d(self.encoder.out_width, 1, 4, 1, 0, bias=False)

    def forward(self, x: torch.Tensor):
        features = self.encoder(x)
        return self.classifier(features).view(-1), features


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation (normal 0.02), as the GANomaly paper's code does."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
