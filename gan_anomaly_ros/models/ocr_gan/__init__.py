"""OCR-GAN (Liang et al. 2022, "Omni-frequency Channel-selection Representations for
Unsupervised Anomaly Detection"): Laplacian frequency decoupling, a two-branch U-Net generator
whose branches exchange information through channel-selection attention, residual map."""

from .model import OcrGan

__all__ = ["OcrGan"]
