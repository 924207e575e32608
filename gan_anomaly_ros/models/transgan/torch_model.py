"""TransGAN networks (Jiang, Chang & Wang, NeurIPS 2021): a transformer generator and a ViT critic.

Generator: z -> MLP -> a small grid of tokens with learned positional
embeddings -> pre-norm transformer blocks -> pixel-shuffle upsampling stages that double the
grid and shrink the embedding -> linear projection to C channels -> tanh. At larger grids the
blocks attend within non-overlapping windows (the paper's grid self-attention), so the
cost grows linearly with the number of pixels.

Discriminator: a ViT over patches with a cls token; the logit comes from the cls token
and the final token features are returned for AnoGAN's feature (perceptual) loss.
No BatchNorm anywhere (LayerNorm only), so both networks work with WGAN-GP.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import torch
from torch import nn
from torch.nn import functional as F

MIN_DIM = 16  # narrowest generator stage; pixel shuffle would otherwise shrink it to nothing


class Attention(nn.Module):
    """Multi-head self-attention written out (softmax(q k^T / sqrt(d)) v).

    Written by hand rather than with scaled_dot_product_attention so that the WGAN-GP penalty
    (a gradient of a gradient) works with every backend.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"embedding dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        q, k, v = (self.qkv(x).view(batch, tokens, 3, self.heads, dim // self.heads)
                   .permute(2, 0, 3, 1, 4))
        # Scale q rather than the (larger) tokens x tokens attention matrix.
        q = q / math.sqrt(dim // self.heads)
        weights = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(batch, tokens, dim))


class Block(nn.Module):
    """Pre-norm transformer encoder block: x + MSA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def to_windows(tokens: torch.Tensor, side: int, window: int) -> torch.Tensor:
    """B x side^2 x D -> (B * windows) x window^2 x D, non-overlapping window x window grids."""
    batch, _, dim = tokens.shape
    n = side // window
    x = tokens.view(batch, n, window, n, window, dim).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(batch * n * n, window * window, dim)


def from_windows(windows: torch.Tensor, side: int, window: int) -> torch.Tensor:
    """Inverse of to_windows."""
    n = side // window
    dim = windows.shape[-1]
    x = windows.view(-1, n, n, window, window, dim).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, side * side, dim)


def tiling_window(side: int, window: int) -> int:
    """The largest window <= ``window`` that tiles a side x side grid (min(window, side) for
    powers of two; 6 on the 12x12 grid of a 48 px model)."""
    return max(w for w in range(1, min(window, side) + 1) if side % w == 0)


class Stage(nn.Module):
    """Transformer blocks on a side x side token grid, windowed when the grid is large."""

    def __init__(self, side: int, dim: int, depth: int, heads: int, mlp_ratio: float,
                 window: int):
        super().__init__()
        self.side, self.window = side, tiling_window(side, window)
        self.position = nn.Parameter(torch.zeros(1, side * side, dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_ratio) for _ in range(depth)])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens + self.position
        if self.window == self.side:
            return self.blocks(tokens)
        windows = to_windows(tokens, self.side, self.window)
        return from_windows(self.blocks(windows), self.side, self.window)


def pixel_shuffle_tokens(tokens: torch.Tensor, side: int) -> torch.Tensor:
    """B x side^2 x 4D -> B x (2 side)^2 x D (TransGAN's upsampling)."""
    batch, _, dim = tokens.shape
    grid = tokens.transpose(1, 2).reshape(batch, dim, side, side)
    return F.pixel_shuffle(grid, 2).flatten(2).transpose(1, 2)


def stage_dims(embed_dim: int, stages: int) -> List[int]:
    """Embedding width per stage: halved at each upsampling, never below MIN_DIM."""
    return [max(embed_dim >> i, min(MIN_DIM, embed_dim)) for i in range(stages)]


MIN_HEAD_DIM = 16


def stage_heads(dim: int, heads: int) -> int:
    """As many heads as asked, fewer on narrow stages: heads of at least MIN_HEAD_DIM channels.

    The high-resolution stages are narrow and hold most tokens, so fewer heads there also keep
    the attention cost down.
    """
    while heads > 1 and (dim % heads or dim // heads < MIN_HEAD_DIM):
        heads -= 1
    return heads


class Generator(nn.Module):
    """z (B x latent_dim) -> image (B x C x S x S) in [-1, 1]."""

    def __init__(self, size: int, channels: int, latent_dim: int, start_size: int,
                 embed_dim: int, depth: int, up_depth: int, heads: int, mlp_ratio: float,
                 window: int):
        super().__init__()
        self.start_size, self.size = start_size, size
        n_stages = int(round(math.log2(size // start_size))) + 1
        dims = stage_dims(embed_dim, n_stages)
        self.embed_dim = embed_dim
        self.mlp = nn.Linear(latent_dim, start_size * start_size * embed_dim)
        sides = [start_size << i for i in range(n_stages)]
        self.stages = nn.ModuleList(
            Stage(side, dim, depth if i == 0 else up_depth, stage_heads(dim, heads), mlp_ratio,
                  window)
            for i, (side, dim) in enumerate(zip(sides, dims)))
        # Linear to 4x the next width, then pixel shuffle: the grid doubles, the width drops.
        self.upsample = nn.ModuleList(nn.Linear(dims[i], 4 * dims[i + 1])
                                      for i in range(n_stages - 1))
        self.sides = sides
        self.norm = nn.LayerNorm(dims[-1])
        self.to_image = nn.Linear(dims[-1], channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        tokens = self.mlp(z.flatten(1)).view(z.shape[0], -1, self.embed_dim)
        for i, stage in enumerate(self.stages):
            tokens = stage(tokens)
            if i < len(self.upsample):
                tokens = pixel_shuffle_tokens(self.upsample[i](tokens), self.sides[i])
        pixels = self.to_image(self.norm(tokens))  # B x S^2 x C
        return torch.tanh(pixels.transpose(1, 2).reshape(z.shape[0], -1, self.size, self.size))


class Discriminator(nn.Module):
    """ViT critic: x -> (logit from the cls token, token features B x (1 + N) x D)."""

    def __init__(self, size: int, channels: int, patch_size: int, embed_dim: int, depth: int,
                 heads: int, mlp_ratio: float):
        super().__init__()
        if size % patch_size:
            raise ValueError(f"patch size {patch_size} does not divide image size {size}")
        tokens = (size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(channels, embed_dim, patch_size, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.position = nn.Parameter(torch.zeros(1, tokens + 1, embed_dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.position, std=0.02)
        self.blocks = nn.Sequential(*[Block(embed_dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, 1)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), patches], dim=1)
        features = self.norm(self.blocks(tokens + self.position))
        return self.head(features[:, 0]).view(-1), features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Token features for the feature-matching (perceptual) loss, B x (1 + N) x D."""
        return self(x)[1]

    def pyramid(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The patch tokens after the embedding and after every block, as B x D x g x g maps
        (g = S / patch_size; the cls token dropped): the maps a memory score can use."""
        side = x.shape[-1] // self.patch_embed.stride[0]
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), patches], dim=1)
        tokens = tokens + self.position
        maps = [tokens]
        for index, block in enumerate(self.blocks):
            tokens = block(tokens)
            maps.append(self.norm(tokens) if index == len(self.blocks) - 1 else tokens)
        return [m[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, side, side) for m in maps]


def init_linear(module: nn.Module) -> None:
    """ViT initialisation: truncated normal (std 0.02) weights, zero biases, unit LayerNorm."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
