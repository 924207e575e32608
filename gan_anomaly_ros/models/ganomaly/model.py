"""GANomaly: training step and scoring around the networks in torch_model.py.

Score modes:
- ``latent``: ||E(x) - E'(G(E(x)))||^2, the paper's score.
- ``residual``: maximum of the smoothed per-pixel residual |x - G(E(x))|.
The per-pixel anomaly map (residual based) is given in both modes; anomalib's GANomaly has none.
"""

from __future__ import annotations

from typing import Dict

import torch

from ..base import AnomalyModel, Prediction, adam_optimizers, optimizer_step
from ..dcgan import init_weights
from ..maps import default_sigma, residual_map
from .loss import DiscriminatorLoss, GeneratorLoss
from .torch_model import Discriminator, Generator

SCORE_MODES = ("latent", "residual")


class Ganomaly(AnomalyModel):
    """Hyper-parameters: latent_dim=100, base_width=32 (the paper's 64 is slow on CPU),
    w_adv=1, w_con=50, w_enc=1 (the paper's loss weights), lr=1e-3 (the paper's 2e-4 is tuned
    for long GPU runs; 1e-3 reached a higher AUROC in 30-epoch CPU runs), beta1=0.5,
    score_mode="residual" | "latent" (the native score), map_sigma=size/32."""

    name = "ganomaly"
    # Best mean image AUROC over the three benchmark datasets (benchmarks/score_candidates.py).
    default_score = ("combined(memory:network=discriminator,reduce=top1"
                     " + memory:network=encoder,layer=-1,reduce=mean)")

    def __init__(self, channels: int, size: int, latent_dim: int = 100, base_width: int = 32,
                 w_adv: float = 1.0, w_con: float = 50.0, w_enc: float = 1.0,
                 lr: float = 1e-3, beta1: float = 0.5, score_mode: str = "residual",
                 map_sigma: float = None):
        if score_mode not in SCORE_MODES:
            raise ValueError(f"score_mode must be one of {SCORE_MODES}, got {score_mode!r}")
        map_sigma = default_sigma(size) if map_sigma is None else float(map_sigma)
        super().__init__(channels, size, latent_dim=latent_dim, base_width=base_width,
                         w_adv=w_adv, w_con=w_con, w_enc=w_enc, lr=lr, beta1=beta1,
                         score_mode=score_mode, map_sigma=map_sigma)
        self.generator = Generator(size, channels, latent_dim, base_width)
        self.discriminator = Discriminator(size, channels, base_width)
        self.generator.apply(init_weights)
        self.discriminator.apply(init_weights)
        self.generator_loss = GeneratorLoss(w_adv, w_con, w_enc)
        self.discriminator_loss = DiscriminatorLoss()

    def configure_optimizers(self) -> Dict[str, torch.optim.Optimizer]:
        return adam_optimizers(self.hparams["lr"], (self.hparams["beta1"], 0.999),
                               generator=self.generator, discriminator=self.discriminator)

    def training_step(self, batch, optimizers) -> Dict[str, float]:
        return encoder_decoder_training_step(self, batch, optimizers, init_weights)

    def feature_pyramids(self):
        return {"encoder": self.generator.encoder1.pyramid,
                "discriminator": self.discriminator.encoder.pyramid}

    def infer(self, batch) -> Prediction:
        reconstruction, latent, latent_rec = self.generator(batch)
        maps = residual_map(batch, reconstruction, self.hparams["map_sigma"])
        if self.hparams["score_mode"] == "latent":
            scores = ((latent - latent_rec) ** 2).flatten(1).mean(dim=1)
        else:
            scores = maps.flatten(1).amax(dim=1)
        return Prediction(scores=scores, anomaly_maps=maps, reconstructions=reconstruction)


def encoder_decoder_training_step(model, batch, optimizers, reinit) -> Dict[str, float]:
    """GANomaly's step, shared with the voxel GAN: the generator against reconstruction,
    latent and feature-matching losses, then the discriminator. ``reinit`` re-initialises a
    discriminator that has won outright (as the paper's code does), so the generator keeps
    getting a useful signal."""
    reconstruction, latent, latent_rec = model.generator(batch)
    _, features_real = model.discriminator(batch)
    _, features_fake = model.discriminator(reconstruction)
    losses = model.generator_loss(batch, reconstruction, latent, latent_rec,
                                  features_real.detach(), features_fake)
    optimizer_step(optimizers["generator"], losses["loss_g"])

    prob_real, _ = model.discriminator(batch)
    prob_fake, _ = model.discriminator(reconstruction.detach())
    loss_d = model.discriminator_loss(prob_real, prob_fake)
    optimizer_step(optimizers["discriminator"], loss_d)
    if loss_d.item() < 1e-5:
        model.discriminator.apply(reinit)
    logs = {name: float(value.detach()) for name, value in losses.items()}
    logs["loss_d"] = float(loss_d.detach())
    return logs
