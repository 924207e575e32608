"""TransGAN (Jiang, Chang & Wang, NeurIPS 2021) as an anomaly model, scored AnoGAN-style.

Training: a transformer generator against a ViT critic, WGAN-GP by default (the paper's
objective) or the classic GAN loss (hparam gan_loss), ``n_critic`` critic updates per generator
update, Adam with TransGAN's betas (0, 0.99). The learning rate default (1e-3) is higher than the
paper's 1e-4, which is tuned for 500k iterations on GPUs: Adam moves a weight by about lr per
step, so at 1e-4 a few hundred CPU steps do not even reach the images' mean colour.

Scoring (AnoGAN, Schlegl et al. 2017, via ..latent_search): ``search_steps`` Adam steps on z
(``search_lr``) minimising (1 - lam) * |x - G(z)| + lam * |f(x) - f(G(z))| (eq. 5, lam = 0.1),
with f the critic's final token features; the score is that loss at z* (eq. 6), the anomaly map
the smoothed residual |x - G(z*)|.
"""

from __future__ import annotations

from typing import Dict

import torch

from ..base import AnomalyModel, Prediction, adam_optimizers, optimizer_step
from ..dcgan import check_size
from ..gan_losses import check_gan_loss
from ..latent_search import check_loss, search_latent
from ..maps import default_sigma, residual_map
from .loss import critic_loss, generator_adversarial_loss
from .torch_model import Discriminator, Generator, init_linear


def default_start_size(size: int) -> int:
    """Initial token grid: S/8 (4x4 at 32), halved until at most 8x8 (5x5 at 80 px, 6x6 at 48),
    the grid TransGAN starts from: larger images get more pixel-shuffle stages rather than a
    wider start."""
    start = size // 8
    while start > 8:
        start //= 2
    return start


def default_patch_size(size: int) -> int:
    """Critic patches: S/8, so the ViT always sees 8x8 = 64 patch tokens (patch 4 at 32)."""
    return size // 8


def check_start_size(size: int, start_size: int) -> int:
    ratio = size // start_size if start_size >= 1 else 0
    if start_size < 1 or size % start_size or ratio & (ratio - 1):
        raise ValueError(f"start_size must divide size {size} by a power of two, "
                         f"got {start_size}")
    return start_size


class TransGAN(AnomalyModel):
    name = "transgan"
    searches_latent = True
    # Best mean image AUROC over the three benchmark datasets (benchmarks/score_candidates.py).
    default_score = "memory:network=discriminator,layer=-3,reduce=top10"

    def __init__(self, channels: int, size: int, latent_dim: int = 64, embed_dim: int = 64,
                 depth: int = 2, up_depth: int = 1, heads: int = 4, mlp_ratio: float = 4.0,
                 window: int = 8, start_size: int = None, d_embed_dim: int = 64,
                 d_depth: int = 3, patch_size: int = None, gan_loss: str = "wgan-gp",
                 gp_weight: float = 10.0, n_critic: int = 1, lr: float = 1e-3,
                 beta1: float = 0.0, beta2: float = 0.99, search_steps: int = 30,
                 search_lr: float = 0.05, lam: float = 0.1, search_loss: str = "l1",
                 search_seed: int = 0, map_sigma: float = None):
        check_size(size)
        check_gan_loss(gan_loss)
        check_loss(search_loss)
        start_size = check_start_size(
            size, default_start_size(size) if start_size is None else int(start_size))
        patch_size = default_patch_size(size) if patch_size is None else int(patch_size)
        if int(window) < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if int(n_critic) < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        map_sigma = default_sigma(size) if map_sigma is None else float(map_sigma)
        super().__init__(channels, size, latent_dim=latent_dim, embed_dim=embed_dim, depth=depth,
                         up_depth=up_depth, heads=heads, mlp_ratio=mlp_ratio, window=window,
                         start_size=start_size, d_embed_dim=d_embed_dim, d_depth=d_depth,
                         patch_size=patch_size, gan_loss=gan_loss, gp_weight=gp_weight,
                         n_critic=int(n_critic), lr=lr, beta1=beta1, beta2=beta2,
                         search_steps=int(search_steps), search_lr=search_lr, lam=lam,
                         search_loss=search_loss, search_seed=int(search_seed),
                         map_sigma=map_sigma)
        self.generator = Generator(size, channels, latent_dim, start_size, embed_dim, depth,
                                   up_depth, heads, mlp_ratio, window)
        self.discriminator = Discriminator(size, channels, patch_size, d_embed_dim, d_depth,
                                           heads, mlp_ratio)
        self.generator.apply(init_linear)
        self.discriminator.apply(init_linear)

    def configure_optimizers(self) -> Dict[str, torch.optim.Optimizer]:
        hp = self.hparams
        return adam_optimizers(hp["lr"], (hp["beta1"], hp["beta2"]), generator=self.generator,
                               discriminator=self.discriminator)

    def sample_latent(self, count: int, like: torch.Tensor) -> torch.Tensor:
        """Training noise z ~ N(0, I)."""
        return torch.randn(count, self.hparams["latent_dim"], device=like.device,
                           dtype=like.dtype)

    def critic(self, images: torch.Tensor) -> torch.Tensor:
        return self.discriminator(images)[0]

    def discriminator_step(self, batch, optimizer) -> Dict[str, float]:
        with torch.no_grad():
            fakes = self.generator(self.sample_latent(batch.shape[0], batch))
        losses = critic_loss(self.hparams["gan_loss"], self.critic, batch, fakes,
                             self.hparams["gp_weight"])
        optimizer_step(optimizer, losses.pop("loss"))
        return {name: float(value.detach()) for name, value in losses.items()}

    def generator_step(self, batch, optimizer) -> Dict[str, float]:
        self.discriminator.requires_grad_(False)  # only G's parameters get gradients here
        try:
            fakes = self.generator(self.sample_latent(batch.shape[0], batch))
            loss = generator_adversarial_loss(self.hparams["gan_loss"], self.critic(fakes))
            optimizer_step(optimizer, loss)
        finally:
            self.discriminator.requires_grad_(True)
        return {"loss_g": float(loss.detach())}

    def training_step(self, batch, optimizers) -> Dict[str, float]:
        for _ in range(self.hparams["n_critic"]):
            logs = self.discriminator_step(batch, optimizers["discriminator"])
        logs.update(self.generator_step(batch, optimizers["generator"]))
        return logs

    def feature_pyramids(self):
        return {"discriminator": self.discriminator.pyramid}

    def infer(self, batch) -> Prediction:
        # The shared search opens enable_grad() itself and differentiates with respect to z
        # only: the weights get no gradients and are never stepped.
        hp = self.hparams
        result = search_latent(self.generator, self.discriminator.features, batch,
                               latent_shape=(hp["latent_dim"],), steps=hp["search_steps"],
                               lr=hp["search_lr"], lam=hp["lam"], seed=hp["search_seed"],
                               loss=hp["search_loss"])
        maps = residual_map(batch, result.reconstructions, hp["map_sigma"])
        return Prediction(scores=result.scores, anomaly_maps=maps,
                          reconstructions=result.reconstructions)
