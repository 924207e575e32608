"""ADGAN's reconstruction loss (Deecke et al. 2018, section 3: squared L2 between the input and
the generated image), as a per-sample mean so the learning rates mean the same at every size."""

from __future__ import annotations

import torch


def reconstruction_loss(images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """Per-sample MSE: B x C x S x S -> B."""
    return ((images - reconstructions) ** 2).flatten(1).mean(dim=1)


def squared_residual(images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """Per-pixel squared residual, mean over channels: ... x C x S x S -> ... x S x S."""
    return ((images - reconstructions) ** 2).mean(dim=-3)
