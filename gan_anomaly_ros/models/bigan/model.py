"""BiGAN / ALI trained as in EGBAD (Zenati et al. 2018, "Efficient GAN-Based Anomaly Detection").

Training: per batch, ``n_critic`` updates of the joint discriminator D(x, z) and one joint update
of G and E (swapped-label adversarial loss + feature_weight * feature matching on D's joint
features). Objective ``gan_loss``: "wgan-gp" (default) or the classic "gan". Adam(lr 2e-4,
betas (0.5, 0.999)), the DCGAN settings EGBAD starts from, with lr 1e-3 (EGBAD's 2e-4 is tuned
for long GPU runs).
``cycle_weight`` (default 1; 0 = EGBAD as published): ALICE's cycle-consistency term
(Li et al. 2017, "ALICE") cycle_weight * |x - G(E(x))|_1 to the G/E update. Pure adversarial
inversion makes G(E(x)) resemble x only after long training; in CPU-length runs the
reconstructions ignore the input and the score falls to chance, which this term fixes.
Score (EGBAD, feature-matching variant, alpha = 0.9):
    A(x) = alpha * ||x - G(E(x))||_1 + (1 - alpha) * ||f(x, E(x)) - f(G(E(x)), E(x))||_1
Anomaly map: the smoothed residual |x - G(E(x))| (maps.residual_map).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Dict

import torch

from ..base import AnomalyModel, Prediction, optimizer_step
from ..dcgan import NORMS, init_weights
from ..gan_losses import check_gan_loss
from ..maps import default_sigma, residual_map
from .loss import (cycle_loss, discriminator_objective, egbad_score,
                   generator_encoder_loss)
from .torch_model import BiGANNetworks


def resolve_d_norm(gan_loss: str, d_norm) -> str:
    """BatchNorm in D like EGBAD for the classic loss; WGAN-GP's per-sample penalty forbids it."""
    if d_norm is None:
        return "layer" if gan_loss == "wgan-gp" else "batch"
    if d_norm not in NORMS:
        raise ValueError(f"d_norm must be one of {NORMS}, got {d_norm!r}")
    if gan_loss == "wgan-gp" and d_norm == "batch":
        raise ValueError("a WGAN-GP critic must not use BatchNorm: d_norm 'layer' or 'none'")
    return d_norm


@contextmanager
def frozen(module: torch.nn.Module):
    """No parameter gradients for ``module`` while the other networks are updated."""
    module.requires_grad_(False)
    try:
        yield
    finally:
        module.requires_grad_(True)


class BiGAN(AnomalyModel):
    name = "bigan"
    # Best mean image AUROC over the three benchmark datasets (benchmarks/score_candidates.py).
    default_score = ("combined(memory:network=discriminator,reduce=top1"
                     " + memory:network=discriminator,layer=-1,reduce=mean)")

    def __init__(self, channels: int, size: int, latent_dim: int = 100, base_width: int = 32,
                 feature_dim: int = 256, gan_loss: str = "wgan-gp", d_norm: str = None,
                 feature_weight: float = 1.0, gp_weight: float = 10.0, n_critic: int = 1,
                 lr: float = 1e-3, beta1: float = 0.5, beta2: float = 0.999, alpha: float = 0.9,
                 map_sigma: float = None, cycle_weight: float = 1.0):
        check_gan_loss(gan_loss)
        d_norm = resolve_d_norm(gan_loss, d_norm)
        if int(n_critic) < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        map_sigma = default_sigma(size) if map_sigma is None else float(map_sigma)
        super().__init__(channels, size, latent_dim=latent_dim, base_width=base_width,
                         feature_dim=feature_dim, gan_loss=gan_loss, d_norm=d_norm,
                         feature_weight=feature_weight, gp_weight=gp_weight,
                         n_critic=int(n_critic), lr=lr, beta1=beta1, beta2=beta2,
                         alpha=alpha, map_sigma=map_sigma, cycle_weight=float(cycle_weight))
        self.networks = BiGANNetworks(size, channels, latent_dim, base_width, feature_dim, d_norm)
        self.networks.apply(init_weights)

    def configure_optimizers(self) -> Dict[str, torch.optim.Optimizer]:
        hp = self.hparams
        betas = (hp["beta1"], hp["beta2"])
        nets = self.networks
        generator_params = list(nets.generator.parameters()) + list(nets.encoder.parameters())
        return {"generator": torch.optim.Adam(generator_params, lr=hp["lr"], betas=betas),
                "discriminator": torch.optim.Adam(nets.discriminator.parameters(), lr=hp["lr"],
                                                  betas=betas)}

    def discriminator_step(self, batch, optimizer) -> Dict[str, float]:
        """One D update: real pairs (x, E(x)) against generated pairs (G(z), z)."""
        nets, hp = self.networks, self.hparams
        with torch.no_grad():
            latents_fake = nets.sample_latent(batch.shape[0], batch)
            real_pair = (batch, nets.encoder(batch))
            fake_pair = (nets.generator(latents_fake), latents_fake)
        losses = discriminator_objective(hp["gan_loss"], nets.discriminator, real_pair,
                                         fake_pair, hp["gp_weight"])
        optimizer_step(optimizer, losses.pop("loss"))
        return {name: float(value.detach()) for name, value in losses.items()}

    def generator_encoder_step(self, batch, optimizer) -> Dict[str, float]:
        """One joint G/E update: swapped-label adversarial loss + feature_weight * feature loss."""
        nets, hp = self.networks, self.hparams
        with frozen(nets.discriminator):
            latents_fake = nets.sample_latent(batch.shape[0], batch)
            latents_real = nets.encoder(batch)
            real_logits, features_real = nets.discriminator(batch, latents_real)
            fake_logits, features_fake = nets.discriminator(nets.generator(latents_fake),
                                                            latents_fake)
            losses = generator_encoder_loss(hp["gan_loss"], real_logits, fake_logits,
                                            features_real, features_fake, hp["feature_weight"])
            if hp["cycle_weight"] > 0:
                losses["cycle"] = cycle_loss(batch, nets.generator(latents_real))
                losses["loss_ge"] = losses["loss_ge"] + hp["cycle_weight"] * losses["cycle"]
            optimizer_step(optimizer, losses["loss_ge"])
        return {name: float(value.detach()) for name, value in losses.items()}

    def training_step(self, batch, optimizers) -> Dict[str, float]:
        for _ in range(self.hparams["n_critic"]):
            logs = self.discriminator_step(batch, optimizers["discriminator"])
        logs.update(self.generator_encoder_step(batch, optimizers["generator"]))
        return logs

    def feature_pyramids(self):
        return {"encoder": self.networks.encoder.pyramid,
                "discriminator": self.networks.discriminator.image_encoder.pyramid}

    def infer(self, batch) -> Prediction:
        nets = self.networks
        reconstructions, latents = nets.reconstruct(batch)
        _, features = nets.discriminator(batch, latents)
        _, features_reconstructed = nets.discriminator(reconstructions, latents)
        scores = egbad_score(batch, reconstructions, features, features_reconstructed,
                             self.hparams["alpha"])
        maps = residual_map(batch, reconstructions, self.hparams["map_sigma"])
        return Prediction(scores=scores, anomaly_maps=maps, reconstructions=reconstructions)
