"""Skip-GANomaly: training step and scoring around the networks in torch_model.py.

Training alternates, per batch, one generator step (L = w_adv L_adv + w_con L_con + w_lat L_lat)
and one discriminator step (classic GAN or WGAN-GP, hparam ``gan_loss``).
Score: A(x) = lambda * mean|x - x^| + (1 - lambda) * mean (f(x) - f(x^))^2 per image.
Anomaly map: the smoothed per-pixel residual |x - x^|.
"""

from __future__ import annotations

from typing import Dict

import torch

from ..base import AnomalyModel, Prediction, adam_optimizers
from ..dcgan import init_weights
from ..gan_losses import check_gan_loss
from ..maps import default_sigma, residual_map
from .loss import DiscriminatorLoss, GeneratorLoss, anomaly_score
from .torch_model import Discriminator, UNetGenerator


class SkipGanomaly(AnomalyModel):
    """Hyper-parameters (paper / authors' code defaults where they exist):

    latent_dim=100 (bottleneck width), base_width=32 (first conv width; the paper's 64 is slow
    on CPU), w_adv=1, w_con=50, w_lat=1 (loss weights), lr=2e-4, beta1=0.5 (Adam, both networks),
    gan_loss="gan" | "wgan-gp", gp_weight=10 (WGAN-GP only), score_lambda=0.9 (lambda in A(x)),
    map_sigma=size/32 (anomaly map smoothing, pixels).
    """

    name = "skip_ganomaly"
    # Best mean image AUROC over the three benchmark datasets (benchmarks/score_candidates.py).
    default_score = ("combined(memory:network=discriminator,reduce=top1"
                     " + memory:network=discriminator,layer=-1,reduce=mean)")

    def __init__(self, channels: int, size: int, latent_dim: int = 100, base_width: int = 32,
                 w_adv: float = 1.0, w_con: float = 50.0, w_lat: float = 1.0,
                 lr: float = 2e-4, beta1: float = 0.5, gan_loss: str = "gan",
                 gp_weight: float = 10.0, score_lambda: float = 0.9, map_sigma: float = None):
        check_gan_loss(gan_loss)
        if not 0.0 <= score_lambda <= 1.0:
            raise ValueError(f"score_lambda must be in [0, 1], got {score_lambda}")
        map_sigma = default_sigma(size) if map_sigma is None else float(map_sigma)
        super().__init__(channels, size, latent_dim=latent_dim, base_width=base_width,
                         w_adv=w_adv, w_con=w_con, w_lat=w_lat, lr=lr, beta1=beta1,
                         gan_loss=gan_loss, gp_weight=gp_weight, score_lambda=score_lambda,
                         map_sigma=map_sigma)
        self.generator = UNetGenerator(size, channels, latent_dim, base_width)
        # WGAN-GP's per-sample gradient penalty is invalid with BatchNorm in the critic.
        norm = "layer" if gan_loss == "wgan-gp" else "batch"
        self.discriminator = Discriminator(size, channels, base_width, norm=norm)
        self.generator.apply(init_weights)
        self.discriminator.apply(init_weights)
        self.generator_loss = GeneratorLoss(gan_loss, w_adv, w_con, w_lat)
        self.discriminator_loss = DiscriminatorLoss(gan_loss, gp_weight)

    def configure_optimizers(self) -> Dict[str, torch.optim.Optimizer]:
        return adam_optimizers(self.hparams["lr"], (self.hparams["beta1"], 0.999),
                               generator=self.generator, discriminator=self.discriminator)

    def training_step(self, batch, optimizers) -> Dict[str, float]:
        reconstruction = self.generator(batch)
        _, features_real = self.discriminator(batch)
        fake_logits, features_fake = self.discriminator(reconstruction)
        losses = self.generator_loss(batch, reconstruction, fake_logits, features_real.detach(),
                                     features_fake)
        optimizers["generator"].zero_grad(set_to_none=True)
        losses["loss_g"].backward()
        optimizers["generator"].step()

        d_losses = self.discriminator_loss(self.discriminator, batch, reconstruction)
        optimizers["discriminator"].zero_grad(set_to_none=True)  # drops grads from the G step
        d_losses["loss_d"].backward()
        optimizers["discriminator"].step()
        # As the authors' code: a classic discriminator that has won outright is re-initialised
        # so the generator keeps getting a useful signal (a WGAN critic has no such saturation).
        if self.hparams["gan_loss"] == "gan" and d_losses["loss_d"].item() < 1e-5:
            self.discriminator.apply(init_weights)
        logs = {name: float(value.detach()) for name, value in losses.items()}
        logs.update({name: float(value.detach()) for name, value in d_losses.items()})
        return logs

    def feature_pyramids(self):
        return {"encoder": self.generator.encoder.pyramid,
                "discriminator": self.discriminator.encoder.pyramid}

    def infer(self, batch) -> Prediction:
        reconstruction = self.generator(batch)
        _, features_real = self.discriminator(batch)
        _, features_fake = self.discriminator(reconstruction)
        scores = anomaly_score(batch, reconstruction, features_real, features_fake,
                               self.hparams["score_lambda"])
        maps = residual_map(batch, reconstruction, self.hparams["map_sigma"])
        return Prediction(scores=scores, anomaly_maps=maps, reconstructions=reconstruction)
