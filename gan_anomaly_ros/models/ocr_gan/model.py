"""OCR-GAN: training step and scoring around the networks in torch_model.py.

Per batch: the input is split into low and high frequencies, each branch reconstructs its band
(optionally from a noisy copy, ``noise_std``), the reconstruction is their sum; one generator
step (adversarial + 50 * L1 + latent feature loss), then one discriminator step: BCE as in the
paper, with the discriminator re-initialised when it wins outright as in the authors' code, or
WGAN-GP (``gan_loss="wgan-gp"``, a LayerNorm critic) as the other generator-based models offer.
Score: 0.9 * mean squared residual + 0.1 * mean squared discriminator-feature difference.
Anomaly map: the smoothed residual |x - x^|.
"""

from __future__ import annotations

from typing import Dict

import torch

from ..base import AnomalyModel, Prediction, adam_optimizers, optimizer_step
from ..dcgan import Discriminator, init_weights
from ..gan_losses import check_gan_loss
from ..maps import default_sigma, residual_map
from ..skip_ganomaly.loss import DiscriminatorLoss, GeneratorLoss
from .loss import anomaly_score
from .torch_model import TwoBranchGenerator, frequency_decouple


class OcrGan(AnomalyModel):
    """Hyper-parameters (the authors' defaults where they exist): base_width=32 (their ngf is
    64; 32 keeps CPU training practical), w_adv=1, w_con=50, w_lat=1, lr=2e-4, beta1=0.5,
    noise_std=0 (Gaussian noise on the two bands during training), gan_loss="gan" | "wgan-gp",
    gp_weight=10 (WGAN-GP only), score_lambda=0.9, map_sigma=size/32."""

    name = "ocr_gan"
    # Best mean image AUROC over the three benchmark datasets (benchmarks/score_candidates.py).
    default_score = ("combined(memory:network=encoder,reduce=top1"
                     " + memory:network=discriminator,layer=-1,reduce=mean)")

    def __init__(self, channels: int, size: int, base_width: int = 32, w_adv: float = 1.0,
                 w_con: float = 50.0, w_lat: float = 1.0, lr: float = 2e-4, beta1: float = 0.5,
                 noise_std: float = 0.0, gan_loss: str = "gan", gp_weight: float = 10.0,
                 score_lambda: float = 0.9, map_sigma: float = None):
        check_gan_loss(gan_loss)
        if not 0.0 <= score_lambda <= 1.0:
            raise ValueError(f"score_lambda must be in [0, 1], got {score_lambda}")
        map_sigma = default_sigma(size) if map_sigma is None else float(map_sigma)
        super().__init__(channels, size, base_width=int(base_width), w_adv=float(w_adv),
                         w_con=float(w_con), w_lat=float(w_lat), lr=float(lr),
                         beta1=float(beta1), noise_std=float(noise_std), gan_loss=gan_loss,
                         gp_weight=float(gp_weight), score_lambda=float(score_lambda),
                         map_sigma=map_sigma)
        self.generator = TwoBranchGenerator(size, channels, int(base_width))
        # WGAN-GP's per-sample gradient penalty is invalid with BatchNorm in the critic.
        norm = "layer" if gan_loss == "wgan-gp" else "batch"
        self.discriminator = Discriminator(size, channels, int(base_width), norm=norm)
        self.generator.apply(init_weights)
        self.discriminator.apply(init_weights)
        self.generator_loss = GeneratorLoss(gan_loss, float(w_adv), float(w_con), float(w_lat))
        self.discriminator_loss = DiscriminatorLoss(gan_loss, float(gp_weight))

    def configure_optimizers(self) -> Dict[str, torch.optim.Optimizer]:
        return adam_optimizers(self.hparams["lr"], (self.hparams["beta1"], 0.999),
                               generator=self.generator, discriminator=self.discriminator)

    def reconstruct(self, batch: torch.Tensor, noise_std: float = 0.0) -> torch.Tensor:
        low, high = frequency_decouple(batch)
        if noise_std > 0:
            low = low + noise_std * torch.randn_like(low)
            high = high + noise_std * torch.randn_like(high)
        low_out, high_out = self.generator(low, high)
        return low_out + high_out

    def training_step(self, batch, optimizers) -> Dict[str, float]:
        reconstructions = self.reconstruct(batch, self.hparams["noise_std"])
        _, features_real = self.discriminator(batch)
        fake_logits, features_fake = self.discriminator(reconstructions)
        losses = self.generator_loss(batch, reconstructions, fake_logits, features_real.detach(),
                                     features_fake)
        optimizer_step(optimizers["generator"], losses["loss_g"])

        d_losses = self.discriminator_loss(self.discriminator, batch, reconstructions)
        optimizer_step(optimizers["discriminator"], d_losses["loss_d"])
        # A classic discriminator that has won outright teaches nothing (a WGAN critic does
        # not saturate).
        if self.hparams["gan_loss"] == "gan" and d_losses["loss_d"].item() < 1e-5:
            self.discriminator.apply(init_weights)
        logs = {name: float(value.detach()) for name, value in losses.items()}
        logs.update({name: float(value.detach()) for name, value in d_losses.items()})
        return logs

    def feature_pyramids(self):
        def generator_features(batch):
            levels = self.generator.encode(*frequency_decouple(batch))
            return [torch.cat(pair, dim=1) for pair in levels]
        return {"encoder": generator_features,
                "discriminator": self.discriminator.encoder.pyramid}

    def infer(self, batch) -> Prediction:
        reconstructions = self.reconstruct(batch)
        _, features_real = self.discriminator(batch)
        _, features_fake = self.discriminator(reconstructions)
        scores = anomaly_score(batch, reconstructions, features_real, features_fake,
                               self.hparams["score_lambda"])
        maps = residual_map(batch, reconstructions, self.hparams["map_sigma"])
        return Prediction(scores=scores, anomaly_maps=maps, reconstructions=reconstructions)
