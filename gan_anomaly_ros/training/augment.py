"""Training augmentations for the variation good parts really show on a line.

Each is off unless given (``gan-anomaly train --augment brightness=0.1,shift=0.05,rotate=5``):

- ``brightness=b``: colour channels x -> x * (1 + a) + c with a, c uniform in [-b, b] per image
  (lighting gain and offset; inputs are in [-1, 1], so b = 0.1 is about +-10 %). Depth is not
  touched: light does not move the part.
- ``shift=s``: translation by up to s * size pixels in x and y (the part not quite where it was).
- ``rotate=r``: rotation by up to r degrees about the centre (the part turned on the table).

Shift and rotation are one affine resampling with reflected borders, so no black corners appear
that the model would learn as normal. Augmentation draws from the global torch RNG, which
training seeds: runs stay repeatable.

A memory score (models/score_heads.py) stores what normal looks like; with augmentations it
also stores ``MEMORY_COPIES`` augmented copies of every training image (memory_inputs), so that
a part turned or lit a little differently from every training image is still near one.
"""

from __future__ import annotations

import math
from typing import Dict, Mapping

import torch
from torch.nn import functional as F

AUGMENTATIONS = {"brightness": 0.5, "shift": 0.25, "rotate": 45.0}  # name -> largest allowed
MEMORY_COPIES = 3


def parse_augment(text) -> Dict[str, float]:
    """``brightness=0.1,shift=0.05`` (or a dict) -> validated {name: amount}."""
    if not text:
        return {}
    if isinstance(text, Mapping):
        items = dict(text)
    else:
        items = {}
        for part in filter(None, (p.strip() for p in str(text).split(","))):
            key, eq, value = part.partition("=")
            if not eq:
                raise ValueError(f"augmentation {part!r}: expected name=amount, e.g. shift=0.05")
            try:
                items[key.strip()] = float(value)
            except ValueError as exc:
                raise ValueError(f"augmentation {part!r}: amount must be a number") from exc
    for key, value in items.items():
        if key not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {key!r}; known: {sorted(AUGMENTATIONS)}")
        if not 0.0 <= float(value) <= AUGMENTATIONS[key]:
            raise ValueError(f"augmentation {key}={value}: must be in [0, {AUGMENTATIONS[key]}]")
    return {k: float(v) for k, v in items.items() if float(v) > 0}


def uniform(count: int, amount: float, like: torch.Tensor) -> torch.Tensor:
    return (torch.rand(count) * 2 - 1).mul(amount).to(like.device, like.dtype)


def augment_batch(batch: torch.Tensor, augment: Dict[str, float], colour_channels: int
                  ) -> torch.Tensor:
    """A randomly varied copy of a B x C x S x S batch (the first ``colour_channels`` are
    colour; the rest, depth, only move)."""
    if not augment:
        return batch
    count = batch.shape[0]
    out = batch
    if augment.get("shift", 0) > 0 or augment.get("rotate", 0) > 0:
        angle = uniform(count, math.radians(augment.get("rotate", 0.0)), batch)
        # affine_grid works in [-1, 1] coordinates: a shift of s * size is 2 * s.
        tx = uniform(count, 2 * augment.get("shift", 0.0), batch)
        ty = uniform(count, 2 * augment.get("shift", 0.0), batch)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
        grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
        out = F.grid_sample(batch, grid, mode="bilinear", padding_mode="reflection",
                            align_corners=False)
    if augment.get("brightness", 0) > 0 and colour_channels > 0:
        gain = 1 + uniform(count, augment["brightness"], batch).view(-1, 1, 1, 1)
        offset = uniform(count, augment["brightness"], batch).view(-1, 1, 1, 1)
        colour = (out[:, :colour_channels] * gain + offset).clamp(-1, 1)
        out = torch.cat([colour, out[:, colour_channels:]], dim=1)
    return out


def memory_inputs(images: torch.Tensor, augment: Dict[str, float], colour_channels: int,
                  seed: int = 0, copies: int = MEMORY_COPIES) -> torch.Tensor:
    """The images a memory score is fitted on: the training images and, with augmentations,
    ``copies`` augmented copies of each (drawn from their own seeded generator, so the memory
    of a checkpoint can be rebuilt exactly by `gan-anomaly calibrate`)."""
    if not augment:
        return images
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        extra = [augment_batch(images, augment, colour_channels) for _ in range(copies)]
    finally:
        torch.set_rng_state(state)  # training's own random stream is not disturbed
    return torch.cat([images] + extra)
