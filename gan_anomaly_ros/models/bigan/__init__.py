"""BiGAN / ALI in the EGBAD form (Zenati et al. 2018) with a residual per-pixel anomaly map."""

from .model import BiGAN

__all__ = ["BiGAN"]
