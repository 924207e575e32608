"""What scoring a batch gives: one score per image, a per-pixel map, and the reconstruction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class Prediction:
    scores: torch.Tensor                     # B
    anomaly_maps: torch.Tensor               # B x S x S
    reconstructions: Optional[torch.Tensor]  # B x C x S x S, or None (memory scores)
