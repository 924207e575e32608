"""TransGAN (Jiang, Chang, Wang, NeurIPS 2021) scored by AnoGAN latent search."""

from .model import TransGAN

__all__ = ["TransGAN"]
