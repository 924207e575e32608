"""ADGAN's test-time search (Deecke et al. 2018, Algorithm 1), batched and sequential.

For an input x and each of n_seed starts z_j ~ N(0, I), with a fresh copy theta_j of the
trained generator weights:

    repeat k times:  l = loss(x, g_theta_j(z_j));  z_j <- Adam_z(grad_z l);
                     theta_j <- Adam_theta(grad_theta_j l)
    score(x) = 1/n_seed * sum_j loss(x, g_theta_j(z_j))

Two implementations with the same result (same seeds):

* :func:`adaptive_search_batched`: all B * n_seed (input, seed) copies in one pass (or a few
  passes of several inputs each, see max_copies). The copies' weights are stacked along a
  leading dim and run with torch.func.functional_call under vmap (convolutions become grouped
  ones); one Adam steps all copies, which equals an independent Adam per copy because Adam is
  elementwise and the summed loss gives each copy its own gradient.
* :func:`adaptive_search_sequential`: the reference, a loop over inputs and seeds with
  copy.deepcopy of the generator and one torch.optim.Adam each, as Algorithm 1 reads.

Both run the generator in eval mode (BatchNorm on its running statistics, which stay as
trained): per-sample adaptation must not depend on the other samples of the batch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn
from torch.func import functional_call, vmap

from ..latent_search import eval_mode, initial_latents
from .loss import reconstruction_loss


@dataclass
class AdaptiveSearchResult:
    losses: torch.Tensor           # B x n_seed: loss(x, g_theta_j(z_j)) after the k steps
    reconstructions: torch.Tensor  # B x n_seed x C x S x S: g_theta_j(z_j) after the k steps


def _starts(n_seed: int, latent_shape: Sequence[int], seed: int, like: torch.Tensor):
    """The n_seed starts z_j, the same for every input (scores independent of the batch)."""
    return initial_latents(n_seed, latent_shape, seed).to(like.device, like.dtype)


def _stacked_parameters(generator: nn.Module, copies: int):
    """Every generator parameter repeated along a new leading dim: one weight set per copy."""
    return {name: p.detach().unsqueeze(0).repeat(copies, *([1] * p.dim())).requires_grad_(True)
            for name, p in generator.named_parameters()}


def _batched_generator(generator: nn.Module):
    """(stacked params, z per copy) -> one image per copy, each copy with its own weights."""
    buffers = dict(generator.named_buffers())  # BatchNorm running stats: shared, eval mode

    def one_copy(params, z):
        return functional_call(generator, (params, buffers), (z.unsqueeze(0),)).squeeze(0)

    return vmap(one_copy)


def adaptive_search_batched(generator: nn.Module, images: torch.Tensor,
                            latent_shape: Sequence[int], n_seed: int = 3, steps: int = 19,
                            lr_z: float = 5e-2, lr_theta: float = 6e-9, seed: int = 0,
                            max_copies: Optional[int] = None) -> AdaptiveSearchResult:
    """Algorithm 1 for all inputs and seeds at once; the generator's own weights are not
    touched (the copies are new tensors). Works under an outer torch.no_grad().

    max_copies: at most this many (input, seed) copies per pass, by splitting the inputs (each
    pass still holds all seeds of its inputs); None: one pass. Results do not depend on it.
    """
    count = images.shape[0]
    per_pass = count if max_copies is None else max(1, int(max_copies) // n_seed)
    parts = [_search_one_pass(generator, images[start:start + per_pass], latent_shape, n_seed,
                              steps, lr_z, lr_theta, seed)
             for start in range(0, count, per_pass)]
    if len(parts) == 1:
        return parts[0]
    return AdaptiveSearchResult(losses=torch.cat([p.losses for p in parts]),
                                reconstructions=torch.cat([p.reconstructions for p in parts]))


def _search_one_pass(generator, images, latent_shape, n_seed, steps, lr_z, lr_theta, seed
                     ) -> AdaptiveSearchResult:
    count, copies = images.shape[0], images.shape[0] * n_seed
    # Copy i is (input i // n_seed, seed i % n_seed).
    targets = images.repeat_interleave(n_seed, dim=0)
    z = _starts(n_seed, latent_shape, seed, images).repeat(count, *([1] * len(latent_shape)))
    z.requires_grad_(True)
    params = _stacked_parameters(generator, copies)
    # fused: one kernel over the stacked tensors instead of several passes over memory.
    optimizer = torch.optim.Adam([{"params": [z], "lr": lr_z},
                                  {"params": list(params.values()), "lr": lr_theta}],
                                 fused=True)
    with eval_mode(generator):
        generate = _batched_generator(generator)
        with torch.enable_grad():
            for _ in range(int(steps)):
                # The sum: each copy's z and weights get the gradient of that copy's loss only.
                loss = reconstruction_loss(targets, generate(params, z)).sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            reconstructions = generate(params, z)
            losses = reconstruction_loss(targets, reconstructions)
    return AdaptiveSearchResult(losses=losses.view(count, n_seed),
                                reconstructions=reconstructions.view(count, n_seed,
                                                                     *images.shape[1:]))


def adaptive_search_sequential(generator: nn.Module, images: torch.Tensor,
                               latent_shape: Sequence[int], n_seed: int = 3, steps: int = 19,
                               lr_z: float = 5e-2, lr_theta: float = 6e-9, seed: int = 0
                               ) -> AdaptiveSearchResult:
    """Reference: Algorithm 1 as written, one input and one seed at a time (slow)."""
    starts = _starts(n_seed, latent_shape, seed, images)
    losses, reconstructions = [], []
    for x in images:
        x = x.unsqueeze(0)
        for j in range(n_seed):
            adapted = copy.deepcopy(generator).eval()  # theta_j <- theta, for every input
            z = starts[j:j + 1].clone().requires_grad_(True)
            optimizer = torch.optim.Adam([{"params": [z], "lr": lr_z},
                                          {"params": list(adapted.parameters()),
                                           "lr": lr_theta}])
            with torch.enable_grad():
                for _ in range(int(steps)):
                    loss = reconstruction_loss(x, adapted(z)).sum()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
            with torch.no_grad():
                reconstruction = adapted(z)
                losses.append(reconstruction_loss(x, reconstruction)[0])
                reconstructions.append(reconstruction[0])
    count = images.shape[0]
    return AdaptiveSearchResult(
        losses=torch.stack(losses).view(count, n_seed),
        reconstructions=torch.stack(reconstructions).view(count, n_seed, *images.shape[1:]))
