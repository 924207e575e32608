"""f-AnoGAN: two-phase training and izi_f scoring around the networks in torch_model.py.

Phase "gan" (1): WGAN-GP on normal images. Each training_step makes one critic update; every
``n_critic``-th step also makes one generator update (Gulrajani et al. 2017, Algorithm 1).
Phase "encoder" (2): G and C are frozen (weights and BatchNorm statistics) and E is trained
with the izi_f loss: mean((x - G(E(x)))^2) + kappa * mean((f(x) - f(G(E(x))))^2).

on_epoch_start switches from "gan" to "encoder" at epoch int(gan_epochs_fraction * epochs).
A fresh model starts in "gan"; set_phase() switches by hand (tests, custom loops). The phase and
the critic step counter are buffers, so a checkpoint records them.

Score: the per-sample izi_f value, the paper's A(x) = A_R(x) + kappa * A_D(x).
Anomaly map: the smoothed per-pixel residual |x - G(E(x))|.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Dict

import torch
from torch import nn

from ..base import AnomalyModel, Prediction
from ..dcgan import init_weights
from ..gan_losses import check_gan_loss
from ..maps import default_sigma, residual_map
from .loss import CriticLoss, GeneratorLoss, izif_residuals
from .torch_model import Critic, Generator, LatentEncoder

PHASES = ("gan", "encoder")


@contextmanager
def frozen(*modules: nn.Module):
    """No parameter gradients for these modules inside the block (gradients still flow through)."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


class FAnoGAN(AnomalyModel):
    """Hyper-parameters (paper / authors' code defaults where they exist):

    latent_dim=128 (z size, authors' ZDIM), base_width=32 (authors' DIM is 64; 32 keeps CPU
    training practical), gan_loss="wgan-gp" (paper) | "gan" (BCE, same BatchNorm-free critic),
    n_critic=5 for WGAN-GP, 1 for "gan" (critic updates per generator update),
    gp_weight=10, lr=1e-3, beta1=0.0, beta2=0.9 (Adam for G and C; WGAN-GP's 1e-4 is tuned for
    long GPU runs), encoder_lr=1e-3 (authors': 5e-5 with RMSProp; Adam here), kappa=1 (izi_f
    feature weight), gan_epochs_fraction=0.67 (share of the epochs spent in phase 1; the
    learning rates and this share reached the best AUROC in 30-epoch CPU runs),
    critic_norm="layer" | "none", encoder_norm="layer" | "batch" | "none" (the authors use
    BatchNorm in E; layer norm scores each image independently of its batch and avoids the
    train/eval gap of BatchNorm statistics after a short phase 2), map_sigma=size/32.
    """

    name = "f_anogan"
    # Best mean image AUROC over the three benchmark datasets (benchmarks/score_candidates.py).
    default_score = ("combined(memory:network=critic,reduce=top1"
                     " + memory:network=encoder,layer=-1,reduce=mean)")
    # Relative-height maps (a dent is a few cells of a smooth face): the memory of the
    # encoder's 16 x 16 map, image AUROC 0.993-0.999 against 0.946-0.958 for the default above
    # on benchmarks/geometry_defects.py (three seeds).
    # RGB-D parts: the combined score's local half alone (the critic's 8 x 8 memory, top
    # patch); the global encoder half only added false alarms there. At least as good in image
    # AUROC and F1 on all six RGB-D measurements (the demo model, two benchmark synthetic
    # runs, part crops centred and anywhere: 0.962-0.990 against 0.953-0.980, placement
    # 0.776 / 0.981 against 0.750 / 0.963; README, "Scores").
    # The part's orthographic colour (part_colour): the critic's 16 x 16 memory, 0.955 / 0.828
    # (parts centred / anywhere) against 0.937 / 0.794 for its 8 x 8 one
    # (benchmarks/orthographic_colour.py); a quarter of it (coreset) scores as well (0.959 /
    # 0.814 against 0.955 / 0.812 on the same checkpoints) in 11 instead of 44 ms per frame.
    default_scores_by_mode = {"height": "memory:network=encoder,layer=-3,reduce=max",
                              "rgbd": "memory:network=critic,reduce=top1",
                              "part_colour": ("memory:network=critic,layer=-3,reduce=top1,"
                                              "coreset=0.25")}

    def __init__(self, channels: int, size: int, latent_dim: int = 128, base_width: int = 32,
                 gan_loss: str = "wgan-gp", n_critic: int = None, gp_weight: float = 10.0,
                 lr: float = 1e-3, beta1: float = 0.0, beta2: float = 0.9,
                 encoder_lr: float = 1e-3, kappa: float = 1.0,
                 gan_epochs_fraction: float = 0.67, critic_norm: str = "layer",
                 encoder_norm: str = "layer", map_sigma: float = None):
        check_gan_loss(gan_loss)
        if critic_norm not in ("layer", "none"):
            raise ValueError(f"critic_norm must be 'layer' or 'none' (no BatchNorm in a "
                             f"WGAN-GP critic), got {critic_norm!r}")
        if not 0.0 <= gan_epochs_fraction <= 1.0:
            raise ValueError(f"gan_epochs_fraction must be in [0, 1], got {gan_epochs_fraction}")
        if n_critic is None:
            n_critic = 5 if gan_loss == "wgan-gp" else 1
        if int(n_critic) < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        map_sigma = default_sigma(size) if map_sigma is None else float(map_sigma)
        super().__init__(channels, size, latent_dim=latent_dim, base_width=base_width,
                         gan_loss=gan_loss, n_critic=int(n_critic), gp_weight=gp_weight, lr=lr,
                         beta1=beta1, beta2=beta2, encoder_lr=encoder_lr, kappa=kappa,
                         gan_epochs_fraction=gan_epochs_fraction, critic_norm=critic_norm,
                         encoder_norm=encoder_norm, map_sigma=map_sigma)
        self.generator = Generator(size, channels, latent_dim, base_width)
        self.critic = Critic(size, channels, base_width, norm=critic_norm)
        self.encoder = LatentEncoder(size, channels, latent_dim, base_width, norm=encoder_norm)
        for network in (self.generator, self.critic, self.encoder):
            network.apply(init_weights)
        self.critic_loss = CriticLoss(gan_loss, gp_weight)
        self.generator_loss = GeneratorLoss(gan_loss)
        # Training state kept as buffers so a checkpoint holds all of it.
        self.register_buffer("phase_index", torch.zeros((), dtype=torch.long))
        self.register_buffer("critic_steps", torch.zeros((), dtype=torch.long))

    # -- phases -------------------------------------------------------------------------------

    @property
    def phase(self) -> str:
        return PHASES[int(self.phase_index)]

    def set_phase(self, phase: str) -> None:
        """"gan" (train G and C) or "encoder" (train E against the frozen G and C)."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        self.phase_index.fill_(PHASES.index(phase))
        self.train(self.training)  # re-apply the frozen networks' eval mode

    def switch_epoch(self, epochs: int) -> int:
        """First epoch of phase 2: int(fraction * epochs), leaving each phase at least one
        epoch when there are two or more."""
        switch = int(self.hparams["gan_epochs_fraction"] * epochs)
        return min(max(switch, 1), epochs - 1) if epochs >= 2 else switch

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        self.set_phase("encoder" if epoch >= self.switch_epoch(epochs) else "gan")

    def train(self, mode: bool = True):
        super().train(mode)
        if self.phase == "encoder":
            # Frozen G and C: BatchNorm must not update running statistics in phase 2.
            self.generator.eval()
            self.critic.eval()
        return self

    # -- training -----------------------------------------------------------------------------

    def configure_optimizers(self) -> Dict[str, torch.optim.Optimizer]:
        hp = self.hparams
        betas = (hp["beta1"], hp["beta2"])
        return {"generator": torch.optim.Adam(self.generator.parameters(), lr=hp["lr"],
                                              betas=betas),
                "critic": torch.optim.Adam(self.critic.parameters(), lr=hp["lr"], betas=betas),
                "encoder": torch.optim.Adam(self.encoder.parameters(), lr=hp["encoder_lr"])}

    def training_step(self, batch, optimizers) -> Dict[str, float]:
        if self.phase == "encoder":
            return self._encoder_step(batch, optimizers["encoder"])
        return self._gan_step(batch, optimizers["critic"], optimizers["generator"])

    def _sample_z(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.randn(batch.shape[0], self.hparams["latent_dim"], 1, 1,
                           device=batch.device, dtype=batch.dtype)

    def _gan_step(self, batch, critic_optimizer, generator_optimizer) -> Dict[str, float]:
        with torch.no_grad():
            fakes = self.generator(self._sample_z(batch))
        losses = self.critic_loss(self.critic, batch, fakes)
        critic_optimizer.zero_grad(set_to_none=True)
        losses["loss_c"].backward()
        critic_optimizer.step()
        self.critic_steps += 1
        logs = {name: float(value.detach()) for name, value in losses.items()}
        if int(self.critic_steps) % self.hparams["n_critic"] == 0:
            with frozen(self.critic):
                fake_logits, _ = self.critic(self.generator(self._sample_z(batch)))
                loss_g = self.generator_loss(fake_logits)
            generator_optimizer.zero_grad(set_to_none=True)
            loss_g.backward()
            generator_optimizer.step()
        return logs

    def _encoder_step(self, batch, encoder_optimizer) -> Dict[str, float]:
        self.generator.eval()
        self.critic.eval()
        with frozen(self.generator, self.critic):
            with torch.no_grad():
                _, features_real = self.critic(batch)
            reconstructions = self.generator(self.encoder(batch))
            _, features_fake = self.critic(reconstructions)
            terms = izif_residuals(batch, reconstructions, features_real, features_fake,
                                   self.hparams["kappa"])
            loss = terms["izif"].mean()
        encoder_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        encoder_optimizer.step()
        return {"loss_e": float(loss.detach()), "image": float(terms["image"].detach().mean()),
                "features": float(terms["features"].detach().mean())}

    # -- scoring ------------------------------------------------------------------------------

    def feature_pyramids(self):
        return {"encoder": self.encoder.pyramid, "critic": self.critic.encoder.pyramid}

    def infer(self, batch) -> Prediction:
        reconstructions = self.generator(self.encoder(batch))
        _, features_real = self.critic(batch)
        _, features_fake = self.critic(reconstructions)
        terms = izif_residuals(batch, reconstructions, features_real, features_fake,
                               self.hparams["kappa"])
        maps = residual_map(batch, reconstructions, self.hparams["map_sigma"])
        return Prediction(scores=terms["izif"], anomaly_maps=maps,
                          reconstructions=reconstructions)
