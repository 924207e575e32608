"""Skip-GANomaly networks (the paper's "Proposed approach" and its Fig. 2).

- Generator: a U-Net. The down path is the shared DCGAN encoder (halving to 4x4, then a 4x4
  convolution to a 1x1 bottleneck); the up path mirrors it with transposed convolutions and
  concatenates the encoder activation of the same resolution before each upsampling, as the
  paper's skip connections do (the pix2pix U-Net: every level but the outermost output).
- Discriminator: the DCGAN encoder plus a 4x4 convolution to one logit; it also returns its last
  feature map f(.), used by the latent loss and the anomaly score.
"""

from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn

from ..dcgan import Discriminator, Encoder

__all__ = ["Discriminator", "UNetGenerator"]


def _up_block(in_width: int, out_width: int) -> nn.Sequential:
    """Transposed conv doubling the resolution, BatchNorm, ReLU (DCGAN generator block)."""
    return nn.Sequential(nn.ConvTranspose2d(in_width, out_width, 4, 2, 1, bias=False),
                         nn.BatchNorm2d(out_width), nn.ReLU(True))


class UNetGenerator(nn.Module):
    """Image -> reconstruction of the same shape, in [-1, 1], through skip connections."""

    def __init__(self, size: int, channels: int, latent_dim: int, base_width: int):
        super().__init__()
        self.encoder = Encoder(size, channels, latent_dim, base_width, norm="batch")
        width, start = self.encoder.out_width, self.encoder.out_resolution
        # 1x1 bottleneck -> start x start (4x4 for powers of two), the encoder's last width.
        self.bottleneck = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, width, start, 1, 0, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(True))
        # At each resolution the decoder input is [decoder features, encoder skip]: twice the width.
        ups, resolution = [], start
        while resolution < size // 2:
            ups.append(_up_block(2 * width, width // 2))
            width, resolution = width // 2, resolution * 2
        self.ups = nn.ModuleList(ups)
        self.output = nn.Sequential(nn.ConvTranspose2d(2 * width, channels, 4, 2, 1, bias=False),
                                    nn.Tanh())

    def _encode(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Bottleneck code and the activation after every down block (S/2 ... 4x4)."""
        skips = []
        for layer in self.encoder.features:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):  # each DCGAN down block ends with one
                skips.append(x)
        return self.encoder.final(x), skips

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code, skips = self._encode(x)
        y = self.bottleneck(code)
        for up, skip in zip(self.ups, reversed(skips)):
            y = up(torch.cat([y, skip], dim=1))
        return self.output(torch.cat([y, skips[0]], dim=1))
