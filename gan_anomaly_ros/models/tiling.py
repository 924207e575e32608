"""Patch mode: score an image larger than the network by overlapping windows.

A model trained on ``window`` x ``window`` patches scores a larger S x S input window by
window (stride window / 2, the last window flush with the far edge, so every pixel is seen)
and the per-window anomaly maps are averaged where they overlap: the map has the input's
resolution.
"""

from __future__ import annotations

from typing import List, Tuple

import torch


def window_starts(full: int, window: int, stride: int) -> List[int]:
    """Offsets of windows covering 0..full, the last one ending exactly at ``full``."""
    if window > full:
        raise ValueError(f"patch size {window} is larger than the image ({full} px)")
    starts = list(range(0, full - window + 1, max(1, stride)))
    if starts[-1] != full - window:
        starts.append(full - window)
    return starts


def tile(batch: torch.Tensor, window: int, stride: int) -> Tuple[torch.Tensor, List[tuple]]:
    """B x C x S x S -> (B * n) x C x window x window (image-major), and the n (y, x) offsets."""
    starts = window_starts(batch.shape[-1], window, stride)
    offsets = [(y, x) for y in starts for x in starts]
    tiles = torch.stack([batch[:, :, y:y + window, x:x + window] for y, x in offsets], dim=1)
    return tiles.flatten(0, 1), offsets


def stitch(tiles: torch.Tensor, offsets: List[tuple], full: int) -> torch.Tensor:
    """(B * n) x [C x] w x w -> B x [C x] S x S, averaging where windows overlap."""
    window = tiles.shape[-1]
    per_image = tiles.view(-1, len(offsets), *tiles.shape[1:])
    out = per_image.new_zeros((per_image.shape[0], *tiles.shape[1:-2], full, full))
    count = per_image.new_zeros((full, full))
    for index, (y, x) in enumerate(offsets):
        out[..., y:y + window, x:x + window] += per_image[:, index]
        count[y:y + window, x:x + window] += 1
    return out / count


def random_patches(batch: torch.Tensor, window: int, generator=None) -> torch.Tensor:
    """One random window x window crop per image (training in patch mode)."""
    full = batch.shape[-1]
    if window == full:
        return batch
    ys = torch.randint(0, full - window + 1, (batch.shape[0],), generator=generator).tolist()
    xs = torch.randint(0, full - window + 1, (batch.shape[0],), generator=generator).tolist()
    return torch.stack([image[:, y:y + window, x:x + window]
                        for image, y, x in zip(batch, ys, xs)])
