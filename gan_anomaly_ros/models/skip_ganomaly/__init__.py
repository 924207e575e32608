"""Skip-GANomaly (Akcay, Atapour-Abarghouei, Breckon, IJCNN 2019): U-Net generator + discriminator."""

from .model import SkipGanomaly

__all__ = ["SkipGanomaly"]
