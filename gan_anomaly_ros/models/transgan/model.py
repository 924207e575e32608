"""TransGAN (Jiang, Chang & Wang, NeurIPS 2021) as an anomaly model, scored AnoGAN-style.

Training: a transformer generator against a ViT critic, WGAN-GP by default (the paper's
objective) or the classic GAN loss (hparam gan_loss), ``critic_steps`` critic updates per
generator update, Adam(lr 1e-4, betas (0, 0.99)) as in the TransGAN code.

Scoring (AnoGAN, Schlegl et al. 2017): for each image, optimise z for ``search_steps`` Adam steps
on ||x - G(z)||_1 + lam * ||f(x) - f(G(z))||_1 (lam = 0.1 as in AnoGAN); the score is that loss
at z*, the anomaly map the smoothed residual |x - G(z*)|.
"""

from __future__ import annotations

from typing import Dict

import torch

from ..base import AnomalyModel, Prediction
from ..dcgan import check_size
from ..gan_losses import check_gan_loss, discriminator_loss, generator_loss, gradient_penalty
from ..maps import default_sigma, residual_map
from .loss import mapping_loss
from .torch_model import Discriminator, Generator, init_linear


def default_start_size(size: int) -> int:
    """Initial token grid: S/8 (TransGAN starts 32x32 images from 4x4 ... 8x8), at most 8x8."""
    return min(size // 8, 8)


def default_patch_size(size: int) -> int:
    """Critic patches: S/8, so the ViT always sees 8x8 = 64 patch tokens (patch 4 at 32)."""
    return size // 8


class TransGAN(AnomalyModel):
    name = "transgan"

    def __init__(self, channels: int, size: int, latent_dim: int = 64, embed_dim: int = 64,
                 depth: int = 2, up_depth: int = 1, heads: int = 4, mlp_ratio: float = 4.0,
                 window: int = 8, start_size: int = None, d_embed_dim: int = 64,
                 d_depth: int = 3, patch_size: int = None, gan_loss: str = "wgan-gp",
                 gp_weight: float = 10.0, critic_steps: int = 1, lr: float = 1e-4,
                 beta1: float = 0.0, beta2: float = 0.99, search_steps: int = 30,
                 search_lr: float = 0.05, lam: float = 0.1, search_seed: int = 0,
                 map_sigma: float = None):
        check_size(size)
        check_gan_loss(gan_loss)
        start_size = default_start_size(size) if start_size is None else int(start_size)
        patch_size = default_patch_size(size) if patch_size is None else int(patch_size)
        if start_size < 1 or size % start_size or (size // start_size) & (size // start_size - 1):
            raise ValueError(f"start_size must divide size {size} by a power of two, "
                             f"got {start_size}")
        if int(critic_steps) < 1:
            raise ValueError(f"critic_steps must be >= 1, got {critic_steps}")
        map_sigma = default_sigma(size) if map_sigma is None else float(map_sigma)
        super().__init__(channels, size, latent_dim=latent_dim, embed_dim=embed_dim, depth=depth,
                         up_depth=up_depth, heads=heads, mlp_ratio=mlp_ratio, window=window,
                         start_size=start_size, d_embed_dim=d_embed_dim, d_depth=d_depth,
                         patch_size=patch_size, gan_loss=gan_loss, gp_weight=gp_weight,
                         critic_steps=int(critic_steps), lr=lr, beta1=beta1, beta2=beta2,
                         search_steps=int(search_steps), search_lr=search_lr, lam=lam,
                         search_seed=int(search_seed), map_sigma=map_sigma)
        self.generator = Generator(size, channels, latent_dim, start_size, embed_dim, depth,
                                   up_depth, heads, mlp_ratio, window)
        self.discriminator = Discriminator(size, channels, patch_size, d_embed_dim, d_depth,
                                           heads, mlp_ratio)
        self.generator.apply(init_linear)
        self.discriminator.apply(init_linear)

    def configure_optimizers(self) -> Dict[str, torch.optim.Optimizer]:
        hp = self.hparams
        betas = (hp["beta1"], hp["beta2"])
        return {"generator": torch.optim.Adam(self.generator.parameters(), lr=hp["lr"],
                                              betas=betas),
                "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=hp["lr"],
                                                  betas=betas)}

    def sample_latent(self, batch_size: int, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(batch_size, self.hparams["latent_dim"], device=like.device,
                           dtype=like.dtype)

    def discriminator_step(self, batch, optimizer) -> Dict[str, float]:
        kind = self.hparams["gan_loss"]
        with torch.no_grad():
            fakes = self.generator(self.sample_latent(batch.shape[0], batch))
        real_logits, _ = self.discriminator(batch)
        fake_logits, _ = self.discriminator(fakes)
        loss = discriminator_loss(kind, real_logits, fake_logits)
        logs = {"loss_d": loss}
        if kind == "wgan-gp":
            logs["gradient_penalty"] = gradient_penalty(
                lambda x: self.discriminator(x)[0], batch, fakes, self.hparams["gp_weight"])
            loss = loss + logs["gradient_penalty"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {name: float(value.detach()) for name, value in logs.items()}

    def generator_step(self, batch, optimizer) -> Dict[str, float]:
        self.discriminator.requires_grad_(False)  # only G's parameters get gradients here
        try:
            fake_logits, _ = self.discriminator(
                self.generator(self.sample_latent(batch.shape[0], batch)))
            loss = generator_loss(self.hparams["gan_loss"], fake_logits)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        finally:
            self.discriminator.requires_grad_(True)
        return {"loss_g": float(loss.detach())}

    def training_step(self, batch, optimizers) -> Dict[str, float]:
        for _ in range(self.hparams["critic_steps"]):
            logs = self.discriminator_step(batch, optimizers["discriminator"])
        logs.update(self.generator_step(batch, optimizers["generator"]))
        return logs

    def search(self, batch: torch.Tensor):
        """AnoGAN latent mapping: (z*, G(z*), per-sample loss at z*)."""
        hp = self.hparams
        seed = torch.Generator(device="cpu").manual_seed(hp["search_seed"])
        z = torch.randn(batch.shape[0], hp["latent_dim"], generator=seed).to(batch)
        z.requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=hp["search_lr"])
        with torch.no_grad():
            features_real = self.discriminator.features(batch)
        for _ in range(hp["search_steps"]):
            generated = self.generator(z)
            loss = mapping_loss(batch, generated, features_real,
                                self.discriminator.features(generated), hp["lam"])
            (gradient,) = torch.autograd.grad(loss.sum(), z)  # per-sample: sum, not mean
            optimizer.zero_grad(set_to_none=True)
            z.grad = gradient
            optimizer.step()
        with torch.no_grad():
            generated = self.generator(z)
            scores = mapping_loss(batch, generated, features_real,
                                  self.discriminator.features(generated), hp["lam"])
        return z.detach(), generated, scores

    def predict(self, batch) -> Prediction:
        # Called under no_grad; the search needs gradients with respect to z only, so the
        # stored weights take none (and are never stepped).
        with torch.enable_grad():
            _, reconstructions, scores = self.search(batch)
        maps = residual_map(batch, reconstructions, self.hparams["map_sigma"])
        return Prediction(scores=scores, anomaly_maps=maps, reconstructions=reconstructions)
