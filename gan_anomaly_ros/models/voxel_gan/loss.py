"""Voxel GANomaly losses: GANomaly's (models/ganomaly/loss.py), which hold for any tensor shape.

Generator: w_adv * ||f(x) - f(x^)||_2 (adversarial, feature matching on the discriminator's
last 3D feature map) + w_con * ||x - x^||_1 (reconstruction of the grid, logged as
``contextual``) + w_enc * ||z - z^||_2 (latent). Discriminator: binary cross-entropy, real
grids -> 1, reconstructions -> 0.
"""

from __future__ import annotations

from ..ganomaly.loss import DiscriminatorLoss, GeneratorLoss

__all__ = ["GeneratorLoss", "DiscriminatorLoss"]
