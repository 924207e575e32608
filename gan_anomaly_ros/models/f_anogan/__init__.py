"""f-AnoGAN (Schlegl et al., Medical Image Analysis 2019): WGAN-GP, then an izi_f encoder."""

from .model import FAnoGAN

__all__ = ["FAnoGAN"]
