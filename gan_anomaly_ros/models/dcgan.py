"""DCGAN building blocks shared by the GAN models: a halving encoder, a doubling decoder."""

from __future__ import annotations

from typing import List

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


def supported_sizes(low: int = 16, high: int = 512):
    """Every size the DCGAN stacks can build: start * 2**n with a start of 4 to 7."""
    return sorted(start << n for start in range(4, 8) for n in range(1, 8)
                  if low <= start << n <= high)


def dcgan_layout(size: int):
    """(start, halvings): the stacks halve the image ``halvings`` times down to a start x start
    map (4 to 7 pixels), which one start-sized kernel turns into 1x1. For powers of two that is
    DCGAN's 4x4; 48, 96 or 224 px images start at 6x6 or 7x7."""
    check_size(size)
    halvings = 0
    while size >> halvings >= 8:
        halvings += 1
    return size >> halvings, halvings


def check_size(size: int) -> int:
    """The DCGAN stacks need size = start * 2**n with start 4 to 7 (and 16 to 512 pixels)."""
    if int(size) not in supported_sizes():
        raise ValueError(f"image size must be one of {supported_sizes(32, 256)} (start * 2**n, "
                         f"start 4 to 7; 16 to 512 in all), got {size}")
    return int(size)


class Encoder(nn.Module):
    """Image (C x S x S) -> latent (nz x 1 x 1), halving the resolution down to the start size
    (4x4 for powers of two, see dcgan_layout); ``out_resolution`` is that size."""

    def __init__(self, size: int, channels: int, latent_dim: int, base_width: int,
                 final_conv: bool = True, norm: str = "batch"):
        super().__init__()
        start, _ = dcgan_layout(size)
        layers = [nn.Conv2d(channels, base_width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        width, resolution = base_width, size // 2
        while resolution > start:
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                       _norm(norm, width * 2), nn.LeakyReLU(0.2, True)]
            width, resolution = width * 2, resolution // 2
        self.features = nn.Sequential(*layers)
        self.out_width, self.out_resolution = width, start
        self.final = (nn.Conv2d(width, latent_dim, start, 1, 0, bias=False) if final_conv
                      else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        return self.final(features) if self.final is not None else features

    def pyramid(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The output of every down block (S/2 ... start), then the 1x1 latent when there is a
        final convolution: the feature maps a memory score can use."""
        maps = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):  # each block ends with one
                maps.append(x)
        if self.final is not None:
            maps.append(self.final(x))
        return maps


class Decoder(nn.Module):
    """Latent (nz x 1 x 1) -> image (C x S x S) in [-1, 1], doubling from the start size."""

    def __init__(self, size: int, channels: int, latent_dim: int, base_width: int):
        super().__init__()
        start, halvings = dcgan_layout(size)
        width = base_width * 2 ** (halvings - 1)  # mirrors the encoder's widest layer
        layers = [nn.ConvTranspose2d(latent_dim, width, start, 1, 0, bias=False),
                  nn.BatchNorm2d(width), nn.ReLU(True)]
        resolution = start
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
        self.classifier = nn.Conv2d(self.encoder.out_width, 1, self.encoder.out_resolution, 1, 0,
                                    bias=False)

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
