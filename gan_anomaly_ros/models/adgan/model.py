"""ADGAN (Deecke, Vandermeulen, Ruff, Mandt, Kloft, ECML-PKDD 2018): AnoGAN's DCGAN, scored by
searching n_seed latents per input while adapting a per-seed copy of the generator weights.

Training is AnoGAN's (DcganAnomalyModel: classic GAN or WGAN-GP). Scoring (Algorithm 1, see
torch_model.py): n_seed starts, k joint Adam steps on z (lr_z) and on the copy theta_j
(lr_theta), copies reset to the trained weights for every input; the score is the mean over
seeds of the final MSE, the anomaly map the mean over seeds of the per-pixel squared residual,
smoothed; the reconstruction shown is that of the seed with the lowest loss.
"""

from __future__ import annotations

from typing import Optional, Union

import torch

from ..anogan.model import DcganAnomalyModel
from ..base import Prediction
from ..maps import gaussian_blur
from .loss import squared_residual
from .torch_model import (AdaptiveSearchResult, adaptive_search_batched,
                          adaptive_search_sequential)

# On CPU a pass slows down per image once its stacked weights (with their gradients and Adam
# state, 4x that) leave the cache. Measured at 64 px, 1 thread: base_width=32 (4.4 MB a copy)
# 1.0-1.1 s/image with 6 or 12 copies a pass, 1.7-1.8 s with 24 or 48; base_width=16 (1.1 MB)
# 0.3-0.4 s with 6 to 24 copies, 0.5 s with 48. So passes hold at most this many weight bytes.
CPU_PASS_BYTES = 32 * 2 ** 20


class Adgan(DcganAnomalyModel):
    """ADGAN. Scoring hparams (defaults: our reference RGB-D project; the paper tunes them):
    n_seed=3 starts, k=19 Adam steps, lr_z=5e-2, lr_theta=6e-9, search_seed=0. Plus the GAN
    hparams of DcganAnomalyModel."""

    name = "adgan"
    searches_latent = True
    # The same networks as AnoGAN, hence the same memory features; best mean image AUROC over
    # the benchmark datasets (benchmarks/score_candidates.py).
    default_score = ("combined(memory:network=discriminator,reduce=top1"
                     " + memory:network=discriminator,layer=-1,reduce=mean)")

    def __init__(self, channels: int, size: int, n_seed: int = 3, k: int = 19,
                 lr_z: float = 5e-2, lr_theta: float = 6e-9, search_seed: int = 0,
                 **gan_hparams):
        if int(n_seed) < 1 or int(k) < 0:
            raise ValueError(f"need n_seed >= 1 and k >= 0, got n_seed={n_seed}, k={k}")
        super().__init__(channels, size, n_seed=int(n_seed), k=int(k), lr_z=float(lr_z),
                         lr_theta=float(lr_theta), search_seed=int(search_seed), **gan_hparams)

    def copies_per_pass(self, device: torch.device) -> Optional[int]:
        """How many generator copies one batched pass holds: on CPU as many as fit in
        CPU_PASS_BYTES of stacked weights (at least one input's seeds); elsewhere all."""
        if torch.device(device).type != "cpu":
            return None
        per_copy = sum(p.numel() * p.element_size() for p in self.generator.parameters())
        return max(self.hparams["n_seed"], CPU_PASS_BYTES // per_copy)

    def search(self, batch: torch.Tensor, batched: bool = True,
               max_copies: Union[int, None, str] = "auto") -> AdaptiveSearchResult:
        """Algorithm 1 on a batch: batched (default) or the sequential reference.
        max_copies (batched only): copies per pass, "auto" = copies_per_pass, None = all."""
        h = self.hparams
        kwargs = dict(n_seed=h["n_seed"], steps=h["k"], lr_z=h["lr_z"], lr_theta=h["lr_theta"],
                      seed=h["search_seed"])
        if not batched:
            return adaptive_search_sequential(self.generator, batch, self.latent_shape, **kwargs)
        if max_copies == "auto":
            max_copies = self.copies_per_pass(batch.device)
        return adaptive_search_batched(self.generator, batch, self.latent_shape,
                                       max_copies=max_copies, **kwargs)

    def infer(self, batch) -> Prediction:
        result = self.search(batch)
        residuals = squared_residual(batch.unsqueeze(1), result.reconstructions)  # B x n x S x S
        maps = gaussian_blur(residuals.mean(dim=1), self.hparams["map_sigma"])
        best = result.losses.argmin(dim=1)
        reconstructions = result.reconstructions[torch.arange(batch.shape[0]), best]
        return Prediction(scores=result.losses.mean(dim=1), anomaly_maps=maps,
                          reconstructions=reconstructions)
