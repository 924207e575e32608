"""AnoGAN networks: the DCGAN generator and a discriminator that also returns its features.

The generator is dcgan.Decoder (z: latent_dim x 1 x 1 -> C x S x S in [-1, 1]), as in the paper
(DCGAN, Radford et al. 2016). The discriminator's last feature map (before the logit) is the
"intermediate layer f" of AnoGAN's feature-matching loss (eq. 4).
"""

from ..dcgan import Decoder, Discriminator

__all__ = ["Decoder", "Discriminator"]
