"""A memory of normal feature vectors and nearest-neighbour distances to it (PatchCore's idea,
Roth et al. 2022, with the GAN's own networks instead of an ImageNet backbone).

The memory holds feature vectors from the normal training images, one per feature-map
position; a query position's anomaly value is its Euclidean distance to the nearest stored
vector. Features are standardised per channel with the memory's own statistics first, so that
no channel dominates by scale alone. Everything lives in buffers: a checkpoint stores it, and
loading resizes the buffers to what the file holds.

A coreset (``coreset`` < 1) keeps only that share of the vectors, chosen by greedy k-centre
selection as PatchCore does: each next vector is the one farthest from those already kept, so
the kept set still covers every normal vector closely while a query costs ``coreset`` times as
much. Random subsampling of the same size leaves holes in the rare parts of normal feature
space, which then read as anomalies.
"""

from __future__ import annotations

import torch
from torch import nn

# Query vectors per distance block: bounds the block of distances to ~64 MB at 16384 entries.
QUERY_BLOCK = 1024


def positions(feature_maps: torch.Tensor) -> torch.Tensor:
    """B x C x h x w -> (B * h * w) x C, one row per position."""
    return feature_maps.permute(0, 2, 3, 1).reshape(-1, feature_maps.shape[1])


@torch.no_grad()
def greedy_coreset(vectors: torch.Tensor, count: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``count`` rows chosen by greedy k-centre selection (farthest point first),
    starting from a seeded random row. O(count * N * C), one matrix-vector product per pick."""
    total = len(vectors)
    count = min(int(count), total)
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.empty(count, dtype=torch.long)
    chosen[0] = int(torch.randint(total, (1,), generator=generator))
    squared = (vectors * vectors).sum(dim=1)
    # Squared distance of every row to its nearest chosen row so far.
    nearest = torch.full((total,), float("inf"), device=vectors.device)
    for step in range(count):
        if step:
            chosen[step] = int(nearest.argmax())
        centre = vectors[chosen[step]]
        distance = squared - 2.0 * (vectors @ centre) + squared[chosen[step]]
        nearest = torch.minimum(nearest, distance.clamp_min(0.0))
    return chosen.to(vectors.device)


class FeatureMemory(nn.Module):
    """Nearest-neighbour distances of feature-map positions to those of normal images."""

    def __init__(self, size: int = 65536, k: int = 1, seed: int = 0, coreset: float = 1.0):
        super().__init__()
        if int(size) < 1 or int(k) < 1:
            raise ValueError(f"memory size and k must be >= 1, got size={size}, k={k}")
        if not 0.0 < float(coreset) <= 1.0:
            raise ValueError(f"coreset must be a share in (0, 1], got {coreset}")
        self.capacity, self.k, self.seed = int(size), int(k), int(seed)
        self.coreset = float(coreset)
        self.register_buffer("bank", torch.zeros(0, 0))
        self.register_buffer("mean", torch.zeros(0))
        self.register_buffer("std", torch.zeros(0))
        # Derived from the bank (not saved), for ranking: |b|^2 of every stored vector, and
        # the bank transposed into its own C x N memory (the matrix product reads it row by
        # row: 1.6x faster on CPU than through a transposed view).
        self.register_buffer("bank_sq", torch.zeros(0), persistent=False)
        self.register_buffer("bank_t", torch.zeros(0, 0), persistent=False)

    @property
    def fitted(self) -> bool:
        return self.bank.numel() > 0

    @torch.no_grad()
    def fit(self, vectors: torch.Tensor) -> None:
        """Store (a seeded random subset of at most ``size`` of) these N x C normal vectors."""
        vectors = vectors.detach().float()
        if vectors.ndim != 2 or len(vectors) == 0:
            raise ValueError(f"memory needs N x C vectors with N >= 1, got {tuple(vectors.shape)}")
        self.mean = vectors.mean(dim=0)
        self.std = vectors.std(dim=0).clamp_min(1e-6) if len(vectors) > 1 else \
            torch.ones_like(self.mean)
        if len(vectors) > self.capacity:
            generator = torch.Generator().manual_seed(self.seed)
            keep = torch.randperm(len(vectors), generator=generator)[:self.capacity]
            vectors = vectors[keep.to(vectors.device)]
        bank = (vectors - self.mean) / self.std
        if self.coreset < 1.0:
            count = max(1, int(round(self.coreset * len(bank))))
            bank = bank[greedy_coreset(bank, count, self.seed)]
        self.bank = bank
        self._refresh_norms()

    def _refresh_norms(self) -> None:
        self.bank_sq = (self.bank * self.bank).sum(dim=1)
        self.bank_t = self.bank.t().contiguous()

    def distances(self, feature_maps: torch.Tensor) -> torch.Tensor:
        """B x C x h x w -> B x h x w: distance of each position to its k nearest in memory."""
        if not self.fitted:
            raise RuntimeError("the feature memory is empty: fit it on normal images first "
                               "(training does this before every calibration)")
        batch, channels, height, width = feature_maps.shape
        if channels != self.bank.shape[1]:
            raise ValueError(f"features have {channels} channels, the memory {self.bank.shape[1]}")
        queries = (positions(feature_maps.float()) - self.mean) / self.std
        k = min(self.k, len(self.bank))
        if torch.jit.is_tracing() or torch.compiler.is_compiling():  # an export (export/)
            per_image = queries.view(batch, height * width, channels)
            return self._per_image_distances(per_image, k).view(batch, height, width)
        out = [self._nearest(queries[start:start + QUERY_BLOCK], k)
               for start in range(0, len(queries), QUERY_BLOCK)]
        return torch.cat(out).view(batch, height, width)

    def _per_image_distances(self, queries: torch.Tensor, k: int) -> torch.Tensor:
        """B x P x C -> B x P, in blocks of positions: the loop depends on P only, so an
        exported graph keeps its batch size free (the eager loop above is over B * P)."""
        out = [self._nearest(queries[:, start:start + QUERY_BLOCK], k)
               for start in range(0, queries.shape[1], QUERY_BLOCK)]
        return torch.cat(out, dim=1)

    def _nearest(self, queries: torch.Tensor, k: int) -> torch.Tensor:
        """... x C -> ...: mean distance to the k nearest stored vectors. A matrix product
        finds them (_candidates); for near neighbours its |q|^2 + |b|^2 - 2 q.b form cancels
        to a few float32 digits, so their distances are measured again directly (the maps of
        the default model then differ by 1e-4 between eager and exported runtimes, not 1e-3)."""
        index = self._candidates(queries, k)
        nearest = self.bank[index]                               # ... x k x C
        return (queries.unsqueeze(-2) - nearest).norm(dim=-1).mean(dim=-1)

    def _candidates(self, queries: torch.Tensor, k: int) -> torch.Tensor:
        """Indices of the k nearest stored vectors. |q - b|^2 = |q|^2 + |b|^2 - 2 q.b and |q|^2
        is the same for every b, so |b|^2 - 2 q.b ranks them: one fused matrix product, where
        cdist also built, squared and rooted the whole distance matrix (3x slower)."""
        if queries.dim() == 2:
            ranking = torch.addmm(self.bank_sq, queries, self.bank_t, alpha=-2.0)
        else:
            ranking = self.bank_sq - 2.0 * torch.matmul(queries, self.bank_t)
        if k == 1:
            return ranking.argmin(dim=-1, keepdim=True)
        return ranking.topk(k, dim=-1, largest=False).indices

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A fitted memory's size depends on the data: take the stored shapes.
        for name in ("bank", "mean", "std"):
            key = prefix + name
            if key in state_dict:
                setattr(self, name, torch.empty_like(state_dict[key], device=self.bank.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._refresh_norms()
