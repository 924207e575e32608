"""BiGAN objectives (Donahue et al. 2017; Dumoulin et al. 2017) and EGBAD's anomaly score
(Zenati et al. 2018).

The discriminator separates real pairs (x, E(x)) from generated pairs (G(z), z); G and E are
trained jointly to make it wrong on both sides. Both the classic and the WGAN-GP form use the
shared losses in gan_losses.py.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch.nn import functional as F

from ..gan_losses import discriminator_loss, gradient_penalty

Pair = Tuple[torch.Tensor, torch.Tensor]  # (images B x C x S x S, latents B x nz x 1 x 1)


def joint_gradient_penalty(discriminator, real_pair: Pair, fake_pair: Pair, weight: float
                           ) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017) on interpolated joint pairs, one alpha per sample.

    The pair is flattened into one vector, so the penalty constrains the gradient norm with
    respect to the joint input (x, z), which is what D is a critic of.
    """
    (real_x, real_z), (fake_x, fake_z) = real_pair, fake_pair
    split = real_x[0].numel()

    def critic(joint: torch.Tensor) -> torch.Tensor:
        images = joint[:, :split].reshape(real_x.shape)
        latents = joint[:, split:].reshape(real_z.shape)
        return discriminator(images, latents)[0]

    real = torch.cat([real_x.flatten(1), real_z.flatten(1)], dim=1)
    fake = torch.cat([fake_x.flatten(1), fake_z.flatten(1)], dim=1)
    return gradient_penalty(critic, real, fake, weight)


def discriminator_objective(kind: str, discriminator, real_pair: Pair, fake_pair: Pair,
                            gp_weight: float) -> Dict[str, torch.Tensor]:
    """D's loss on real vs generated pairs (+ the joint penalty for WGAN-GP); total in "loss"."""
    real_logits, _ = discriminator(*real_pair)
    fake_logits, _ = discriminator(*fake_pair)
    losses = {"loss_d": discriminator_loss(kind, real_logits, fake_logits)}
    if kind == "wgan-gp":
        losses["gradient_penalty"] = joint_gradient_penalty(discriminator, real_pair, fake_pair,
                                                            gp_weight)
    losses["loss"] = sum(losses.values())
    return losses


def feature_matching_loss(features_real: torch.Tensor, features_fake: torch.Tensor
                          ) -> torch.Tensor:
    """L2 between the mean joint features of real and generated pairs.

    Real and generated pairs are independent samples (x and z are not paired), so their batch
    statistics are matched: feature matching (Salimans et al. 2016).
    """
    return F.mse_loss(features_fake.mean(dim=0), features_real.mean(dim=0))


def generator_encoder_loss(kind: str, real_logits, fake_logits, features_real, features_fake,
                           feature_weight: float) -> Dict[str, torch.Tensor]:
    """Adversarial loss of G and E with the labels swapped, plus the feature term.

    G wants (G(z), z) judged real and E wants (x, E(x)) judged fake: that is the
    discriminator's loss with real and fake exchanged (BCE with flipped labels for "gan",
    mean D(x, E(x)) - mean D(G(z), z) for "wgan-gp").
    """
    adversarial = discriminator_loss(kind, fake_logits, real_logits)
    feature = feature_matching_loss(features_real, features_fake)
    return {"loss_ge": adversarial + feature_weight * feature, "adversarial": adversarial,
            "feature": feature}


def cycle_loss(images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """ALICE's cycle consistency (Li et al. 2017): mean |x - G(E(x))|."""
    return (images - reconstructions).abs().mean()


def egbad_score(images, reconstructions, features, features_reconstructed, alpha: float
                ) -> torch.Tensor:
    """A(x) = alpha * ||x - G(E(x))||_1 + (1 - alpha) * ||f(x, E(x)) - f(G(E(x)), E(x))||_1.

    EGBAD's score (Zenati et al. 2018) with the feature-matching discriminator term; both
    norms are per-sample means so that neither term grows with the image or feature size.
    """
    residual = (images - reconstructions).abs().flatten(1).mean(dim=1)
    feature = (features - features_reconstructed).abs().flatten(1).mean(dim=1)
    return alpha * residual + (1 - alpha) * feature
