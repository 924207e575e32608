"""OCR-GAN networks: frequency decoupling, the two-branch generator with channel selection.

- Frequency decoupling (FD, the paper's section 3.2): one Laplacian pyramid level. The
  low-frequency image is the input blurred with the 5-tap binomial kernel, halved and brought
  back to full size (cv2.pyrDown then pyrUp in the authors' code); the high-frequency image is
  the rest, so low + high = input exactly.
- Generator: two U-Nets (pix2pix blocks: 4x4 stride-2 convolutions down, transposed
  convolutions up, skip connections at every level but the outermost), one per frequency band.
  After every down step the two branches meet in a channel-selection (CS) block (section 3.3,
  selective-kernel attention): their sum is pooled, squeezed by a linear layer and turned into
  one weight per channel and branch, softmax over the two branches, and each branch continues
  with its own features reweighted. The output is the sum of the two branches' tanh images.
  The authors' code builds each CS block's linear layers anew inside forward(), so they are
  never trained; here they are ordinary trained layers.
- Discriminator: the shared DCGAN discriminator (one logit, its last feature map).
"""

from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from ..dcgan import dcgan_layout

BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: torch.Tensor) -> torch.Tensor:
    kernel = BINOMIAL.to(x.device, x.dtype)
    channels = x.shape[1]
    x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="reflect"),
                 kernel.view(1, 1, 1, 5).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(F.pad(x, (0, 0, 2, 2), mode="reflect"),
                    kernel.view(1, 1, 5, 1).repeat(channels, 1, 1, 1), groups=channels)


def frequency_decouple(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(low, high) with low + high == x: one Laplacian pyramid level (pyrDown: blur, keep the
    even pixels; pyrUp: put them back in place with zeros between, blur, times 4)."""
    down = _blur(x)[:, :, ::2, ::2]
    spread = torch.zeros_like(x)
    spread[:, :, ::2, ::2] = down
    low = 4.0 * _blur(spread)
    return low, x - low


class ChannelSelection(nn.Module):
    """Selective-kernel attention over the two branches' features (the paper's CS block)."""

    def __init__(self, width: int, reduction: int = 2, min_hidden: int = 32):
        super().__init__()
        hidden = max(width // reduction, min_hidden)
        self.squeeze = nn.Linear(width, hidden)
        self.select = nn.Linear(hidden, 2 * width)

    def forward(self, low: torch.Tensor, high: torch.Tensor):
        pooled = (low + high).mean(dim=(2, 3))
        weights = self.select(self.squeeze(pooled)).view(low.shape[0], 2, low.shape[1])
        weights = torch.softmax(weights, dim=1)[..., None, None]
        return low * weights[:, 0], high * weights[:, 1]


def _down(in_width: int, out_width: int, first: bool) -> nn.Sequential:
    layers = [] if first else [nn.LeakyReLU(0.2, True)]
    layers.append(nn.Conv2d(in_width, out_width, 4, 2, 1, bias=False))
    if not first:
        layers.append(nn.BatchNorm2d(out_width))
    return nn.Sequential(*layers)


def _up(in_width: int, out_width: int, last: bool) -> nn.Sequential:
    if last:
        return nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(in_width, out_width, 4, 2, 1),
                             nn.Tanh())
    return nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(in_width, out_width, 4, 2, 1,
                                                           bias=False),
                         nn.BatchNorm2d(out_width))


class Branch(nn.Module):
    """One U-Net's layers (down and up path); the two-branch generator drives them level by
    level so that the branches can meet after every down step."""

    def __init__(self, channels: int, widths: List[int]):
        super().__init__()
        ins = [channels] + widths[:-1]
        self.down = nn.ModuleList(_down(i, o, first=(n == 0))
                                  for n, (i, o) in enumerate(zip(ins, widths)))
        # Up step n maps level n+1 back to level n; every level but the innermost also gets
        # its skip (the down output of that level) concatenated.
        ups = []
        for n in range(len(widths)):
            in_width = widths[n] if n == len(widths) - 1 else 2 * widths[n]
            out_width = channels if n == 0 else widths[n - 1]
            ups.append(_up(in_width, out_width, last=(n == 0)))
        self.up = nn.ModuleList(ups)


class TwoBranchGenerator(nn.Module):
    """(low, high) -> (low reconstruction, high reconstruction); widths double per level down
    to the DCGAN start size (4x4 at powers of two), capped at 8 x base_width."""

    def __init__(self, size: int, channels: int, base_width: int):
        super().__init__()
        start, halvings = dcgan_layout(size)
        widths = [base_width * min(2 ** n, 8) for n in range(halvings)]
        self.widths = widths
        self.low, self.high = Branch(channels, widths), Branch(channels, widths)
        self.select = nn.ModuleList(ChannelSelection(w) for w in widths)

    def encode(self, low: torch.Tensor, high: torch.Tensor):
        """The fused features of both branches after every down step, finest first."""
        levels = []
        for down_low, down_high, select in zip(self.low.down, self.high.down, self.select):
            low, high = select(down_low(low), down_high(high))
            levels.append((low, high))
        return levels

    def forward(self, low: torch.Tensor, high: torch.Tensor):
        levels = self.encode(low, high)
        up_low, up_high = levels[-1]
        for n in reversed(range(len(levels))):
            if n < len(levels) - 1:
                up_low = torch.cat([levels[n][0], up_low], dim=1)
                up_high = torch.cat([levels[n][1], up_high], dim=1)
            up_low, up_high = self.low.up[n](up_low), self.high.up[n](up_high)
        return up_low, up_high
