"""The interface every anomaly model implements, so the scorer runs any of them from a checkpoint.

A model is a torch ``nn.Module`` that knows how to train itself one batch at a time and how to
score a batch: one scalar per image (larger = more anomalous) and a per-pixel anomaly map.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Dict, Optional

import torch
from torch import nn


@dataclass
class Prediction:
    scores: torch.Tensor                     # B
    anomaly_maps: torch.Tensor               # B x S x S
    reconstructions: Optional[torch.Tensor]  # B x C x S x S, or None for models without one


def adam_optimizers(lr: float, betas, **modules: nn.Module) -> Dict[str, torch.optim.Optimizer]:
    """One Adam per named network, same settings (the DCGAN recipe most of our GANs use)."""
    return {name: torch.optim.Adam(module.parameters(), lr=lr, betas=tuple(betas))
            for name, module in modules.items()}


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """zero_grad, backward, step: one update of the networks ``optimizer`` holds."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


class AnomalyModel(nn.Module, ABC):
    """Base class: subclasses set ``name`` and implement the three abstract methods."""

    name = "base"

    def __init__(self, channels: int, size: int, **hparams):
        super().__init__()
        self.channels = int(channels)
        self.size = int(size)
        self.hparams: Dict = dict(hparams)

    @abstractmethod
    def configure_optimizers(self) -> Dict[str, torch.optim.Optimizer]:
        """Create the optimizers; called once before training."""

    @abstractmethod
    def training_step(self, batch: torch.Tensor, optimizers: Dict[str, torch.optim.Optimizer]
                      ) -> Dict[str, float]:
        """One optimisation step on a batch of normal images; returns the losses for logging."""

    @abstractmethod
    def predict(self, batch: torch.Tensor) -> Prediction:
        """Scores and anomaly maps for a batch, in eval mode.

        Callers wrap this in torch.no_grad(); a model that optimises at test time (AnoGAN's
        latent search) opens its own torch.enable_grad() block.
        """

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        """Called before each training epoch (0-based); multi-phase models switch phase here."""

    def describe(self) -> Dict:
        """What a checkpoint must store to rebuild this model."""
        return {"name": self.name, "channels": self.channels, "size": self.size,
                "hparams": self.hparams}
