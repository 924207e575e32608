"""AnoGAN latent mapping (Schlegl et al., IPMI 2017, section 2.2), shared by the GAN models that
score an image by searching the generator's latent space for its closest normal look-alike.

For a query image x, starting from z_1 ~ N(0, I), gamma steps of gradient descent on

    L(z) = (1 - lam) * L_R(z) + lam * L_D(z)                  (paper eq. 5, lam = 0.1)
    L_R(z) = |x - G(z)|                                       (eq. 3, residual loss)
    L_D(z) = |f(x) - f(G(z))|                                 (eq. 4, feature matching on an
                                                               intermediate discriminator layer)

move z only; the generator and discriminator stay fixed. The anomaly score is the loss at the
last z (eq. 6). The paper sums the norms over pixels and used gamma = 500 steps; here the norms
are means per sample (so lam means the same at every image size) and the step count is the
caller's. Adam on z (as in the public AnoGAN implementations) instead of plain SGD.

Usage::

    result = search_latent(generator, lambda x: discriminator(x)[1], images,
                           latent_shape=(100, 1, 1), steps=40, lr=5e-2, lam=0.1, seed=0)
    result.scores, result.reconstructions, result.z

``generate`` and ``features`` must be in eval mode (BatchNorm on running statistics: see
:func:`eval_mode`), so that every sample's loss depends on its own z only.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

import torch
from torch import nn

LOSSES = ("l1", "l2")

Tensor = torch.Tensor


@dataclass
class LatentSearchResult:
    z: Tensor                # B x *latent_shape: the latents found, z*
    reconstructions: Tensor  # B x C x S x S: G(z*)
    scores: Tensor           # B: the search loss L(z*), the anomaly score
    history: Tensor          # (steps + 1) x B: L before each step, then L(z*)


def check_loss(kind: str) -> str:
    if kind not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")
    return kind


def initial_latents(count: int, latent_shape: Sequence[int], seed: int) -> Tensor:
    """``count`` starts z ~ N(0, I) from a seeded CPU generator: the same on every device."""
    generator = torch.Generator().manual_seed(int(seed))
    return torch.randn((count, *latent_shape), generator=generator)


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Temporarily put modules in eval mode (BatchNorm on running stats, which then never
    change), restoring each submodule's own flag afterwards."""
    saved = [(m, m.training) for module in modules for m in module.modules()]
    try:
        for module in modules:
            module.eval()
        yield
    finally:
        for m, training in saved:
            m.training = training


def distance(a: Tensor, b: Tensor, kind: str = "l1") -> Tensor:
    """Per-sample mean |a - b| ("l1") or mean (a - b)^2 ("l2"): B x ... -> B."""
    diff = a - b
    diff = diff.abs() if kind == "l1" else diff * diff
    return diff.flatten(1).mean(dim=1)


def search_loss(images: Tensor, generated: Tensor, real_features: Optional[Tensor],
                fake_features: Optional[Tensor], lam: float, loss: str = "l1") -> Tensor:
    """Per-sample (1 - lam) * L_R + lam * L_D (eq. 5); L_R alone when there are no features."""
    residual = distance(images, generated, loss)
    if real_features is None or fake_features is None:
        return residual
    return (1.0 - lam) * residual + lam * distance(real_features, fake_features, loss)


def search_latent(generate: Callable[[Tensor], Tensor],
                  features: Optional[Callable[[Tensor], Tensor]], images: Tensor,
                  latent_shape: Sequence[int], steps: int = 40, lr: float = 5e-2,
                  lam: float = 0.1, seed: int = 0, loss: str = "l1") -> LatentSearchResult:
    """Map each image to the latent whose generated image is closest to it (AnoGAN eq. 5-6).

    generate: z (B x *latent_shape) -> images (B x C x S x S).
    features: images -> discriminator features (B x ...), or None for the residual loss only.
    images:   B x C x S x S query images.
    steps, lr: Adam steps on z and their learning rate (the paper: 500 steps).
    lam:      weight of the feature-matching term (paper: 0.1).
    seed:     every image starts from the same draw z_1 of this seed, so an image's score does
              not depend on which batch it is scored in.
    loss:     "l1" (the paper's norms) or "l2", for both terms.

    Only z is optimised: gradients are taken with torch.autograd.grad with respect to z alone,
    so no parameter of ``generate`` or ``features`` ever gets a .grad (and their weight
    gradients are not even computed). Works under an outer torch.no_grad().
    """
    check_loss(loss)
    count = images.shape[0]
    start = initial_latents(1, latent_shape, seed).to(images.device, images.dtype)
    z = start.expand(count, *latent_shape).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    history = []
    with torch.enable_grad():
        real_features = None
        if features is not None:
            with torch.no_grad():
                real_features = features(images)  # f(x) is a constant of the search

        def losses_at(z_now: Tensor):
            generated = generate(z_now)
            fake_features = features(generated) if features is not None else None
            return search_loss(images, generated, real_features, fake_features, lam, loss), \
                generated

        for _ in range(int(steps)):
            per_sample, _ = losses_at(z)
            history.append(per_sample.detach())
            # The sum, not the mean: each z gets the gradient of its own loss, whatever B is.
            (gradient,) = torch.autograd.grad(per_sample.sum(), [z])
            z.grad = gradient
            optimizer.step()
    with torch.no_grad():
        scores, reconstructions = losses_at(z.detach())
    history.append(scores)
    return LatentSearchResult(z=z.detach(), reconstructions=reconstructions, scores=scores,
                              history=torch.stack(history))
