"""ADGAN (Deecke et al., ECML-PKDD 2018): multi-seed latent search with per-sample generator
adaptation, on AnoGAN's DCGAN."""

from .model import Adgan

__all__ = ["Adgan"]
