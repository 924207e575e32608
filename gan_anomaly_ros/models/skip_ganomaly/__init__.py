"""Skip-GANomaly (Akcay, Atapour-Abarghouei, Breckon, IJCNN 2019): U-Net GAN, residual map."""

from .model import SkipGanomaly

__all__ = ["SkipGanomaly"]
