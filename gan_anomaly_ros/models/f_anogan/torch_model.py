"""f-AnoGAN networks (the paper's WGAN and encoder), built from the shared DCGAN blocks.

- Generator G: z (latent_dim x 1 x 1, z ~ N(0, I) as in the authors' code) -> image.
- Critic C: DCGAN encoder without BatchNorm (WGAN-GP's per-sample gradient penalty forbids it;
  the authors use layer norm) and a 4x4 convolution to one logit; it also returns its last
  feature map f(.), the "discriminator features" of the izi_f loss.
- Encoder E: image -> z, a DCGAN encoder with a linear output (the authors' default: no tanh or
  clipping of z).
"""

from __future__ import annotations

from ..dcgan import Decoder, Discriminator, Encoder


class Generator(Decoder):
    """G: z -> image in [-1, 1]; the shared DCGAN decoder."""


class LatentEncoder(Encoder):
    """E: image -> z (B x latent_dim x 1 x 1); the shared DCGAN encoder."""


class Critic(Discriminator):
    """C: image -> (logits (B,), features f(x) (B x W x s x s, s = 4 for powers of two)); BatchNorm-free by default."""

    def __init__(self, size: int, channels: int, base_width: int, norm: str = "layer"):
        super().__init__(size, channels, base_width, norm)
