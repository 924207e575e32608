"""AnoGAN: DCGAN training on normal images (shared with ADGAN) and scoring by latent search.

Training (Schlegl et al. 2017, section 2.1): an unconditional DCGAN on normal images only, with
the classic GAN loss (default) or WGAN-GP (``gan_loss="wgan-gp"``: BatchNorm-free critic).
Scoring (section 2.2-2.3): ``search_steps`` Adam steps on z minimising
(1 - lam) * |x - G(z)| + lam * |f(x) - f(G(z))| (see ..latent_search); the score is that loss
at the last z, the anomaly map the smoothed residual |x - G(z*)|.
"""

from __future__ import annotations

from typing import Dict

import torch

from ..base import AnomalyModel, Prediction, adam_optimizers, optimizer_step
from ..dcgan import Decoder, init_weights
from ..gan_losses import check_gan_loss
from ..latent_search import LatentSearchResult, check_loss, eval_mode, search_latent
from ..maps import default_sigma, residual_map
from .loss import adversarial_loss, critic_loss
from .torch_model import Discriminator

# Optimiser defaults per adversarial loss, used where an hparam is left None:
# DCGAN (Radford et al. 2016, section 4: Adam lr 2e-4, beta1 0.5) and
# WGAN-GP (Gulrajani et al. 2017, Algorithm 1: lr 1e-4, betas (0, 0.9), n_critic 5).
TRAINING_DEFAULTS = {
    "gan": {"lr": 2e-4, "beta1": 0.5, "beta2": 0.999, "n_critic": 1},
    "wgan-gp": {"lr": 1e-4, "beta1": 0.0, "beta2": 0.9, "n_critic": 5},
}


class DcganAnomalyModel(AnomalyModel):
    """A DCGAN (generator ``self.generator``, discriminator ``self.discriminator``) trained on
    normal images; subclasses implement ``infer`` and add their scoring hparams.

    GAN hparams (None = the TRAINING_DEFAULTS of ``gan_loss``): latent_dim=100 (DCGAN),
    base_width=32, gan_loss="gan" | "wgan-gp", lr, beta1, beta2, n_critic (critic steps per
    generator step), gp_weight=10 (WGAN-GP lambda), map_sigma (default: size / 32).
    """

    def __init__(self, channels: int, size: int, latent_dim: int = 100, base_width: int = 32,
                 gan_loss: str = "gan", lr: float = None, beta1: float = None,
                 beta2: float = None, n_critic: int = None, gp_weight: float = 10.0,
                 map_sigma: float = None, **scoring_hparams):
        defaults = TRAINING_DEFAULTS[check_gan_loss(gan_loss)]
        resolved = {"lr": lr, "beta1": beta1, "beta2": beta2, "n_critic": n_critic}
        resolved = {k: type(defaults[k])(defaults[k] if v is None else v)
                    for k, v in resolved.items()}
        if resolved["n_critic"] < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        map_sigma = default_sigma(size) if map_sigma is None else float(map_sigma)
        super().__init__(channels, size, latent_dim=int(latent_dim), base_width=int(base_width),
                         gan_loss=gan_loss, **resolved, gp_weight=float(gp_weight),
                         map_sigma=map_sigma, **scoring_hparams)
        self.latent_shape = (int(latent_dim), 1, 1)
        self.generator = Decoder(size, channels, int(latent_dim), int(base_width))
        # The WGAN-GP penalty is per sample: its critic must not use BatchNorm (layer norm,
        # as Gulrajani et al. suggest).
        norm = "batch" if gan_loss == "gan" else "layer"
        self.discriminator = Discriminator(size, channels, int(base_width), norm=norm)
        self.generator.apply(init_weights)
        self.discriminator.apply(init_weights)

    def sample_latent(self, count: int, like: torch.Tensor) -> torch.Tensor:
        """Training noise z ~ N(0, I) (the global RNG, which training seeds)."""
        return torch.randn((count, *self.latent_shape), device=like.device, dtype=like.dtype)

    def configure_optimizers(self) -> Dict[str, torch.optim.Optimizer]:
        h = self.hparams
        return adam_optimizers(h["lr"], (h["beta1"], h["beta2"]), generator=self.generator,
                               discriminator=self.discriminator)

    def training_step(self, batch, optimizers) -> Dict[str, float]:
        """n_critic discriminator steps (fresh fakes each), then one generator step."""
        kind, count = self.hparams["gan_loss"], batch.shape[0]
        for _ in range(self.hparams["n_critic"]):
            with torch.no_grad():  # the critic step needs no graph through G
                fake = self.generator(self.sample_latent(count, batch))
            loss_d = critic_loss(self.discriminator, batch, fake, kind, self.hparams["gp_weight"])
            optimizer_step(optimizers["discriminator"], loss_d)
        loss_g = adversarial_loss(self.discriminator,
                                  self.generator(self.sample_latent(count, batch)), kind)
        optimizer_step(optimizers["generator"], loss_g)
        return {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach())}


    def feature_pyramids(self):
        # No encoder: the discriminator is the network that has seen the normal images.
        return {"discriminator": self.discriminator.encoder.pyramid}


class Anogan(DcganAnomalyModel):
    """AnoGAN. Scoring hparams: search_steps=40 (the paper: 500; 40 keeps CPU scoring to a
    fraction of a second per image at 64 px), search_lr=5e-2 (Adam on z), lam=0.1 (paper),
    search_seed=0 (the start z_1), search_loss="l1" (paper) | "l2". Plus the GAN hparams of
    DcganAnomalyModel."""

    name = "anogan"
    searches_latent = True
    # Best mean image AUROC over the three benchmark datasets (benchmarks/score_candidates.py).
    default_score = ("combined(memory:network=discriminator,reduce=top1"
                     " + memory:network=discriminator,layer=-1,reduce=mean)")

    def __init__(self, channels: int, size: int, search_steps: int = 40,
                 search_lr: float = 5e-2, lam: float = 0.1, search_seed: int = 0,
                 search_loss: str = "l1", **gan_hparams):
        if int(search_steps) < 0:
            raise ValueError(f"search_steps must be >= 0, got {search_steps}")
        super().__init__(channels, size, search_steps=int(search_steps),
                         search_lr=float(search_lr), lam=float(lam),
                         search_seed=int(search_seed), search_loss=check_loss(search_loss),
                         **gan_hparams)

    def search(self, batch: torch.Tensor) -> LatentSearchResult:
        """The latent search (eval mode, weights untouched); ``infer`` builds on it."""
        h = self.hparams
        with eval_mode(self.generator, self.discriminator):
            return search_latent(self.generator, lambda x: self.discriminator(x)[1], batch,
                                 self.latent_shape, steps=h["search_steps"], lr=h["search_lr"],
                                 lam=h["lam"], seed=h["search_seed"], loss=h["search_loss"])

    def infer(self, batch) -> Prediction:
        result = self.search(batch)
        maps = residual_map(batch, result.reconstructions, self.hparams["map_sigma"])
        return Prediction(scores=result.scores, anomaly_maps=maps,
                          reconstructions=result.reconstructions)
