"""How a trained model's networks turn into an image score and an anomaly map.

Every model has the score of its paper (``native``). A score head can replace it without
retraining, because scoring is a choice made after training (``gan-anomaly calibrate --score``):

- ``native``:   the paper's score and the model's own map (usually the smoothed residual).
- ``residual``: the model's own map, reduced to one number (``reduce``: max, mean, top1 or
  top10 = the mean of the highest 1 % or 10 % of the map's pixels).
- ``memory``:   nearest-neighbour distances of the model's own feature maps (``network``,
  ``layer``) to those of the normal training images (feature_memory.py), upsampled to the
  input, smoothed, and reduced as above. The map then shows where the image's features are
  unlike any normal part's, and the score needs no reconstruction: it is also fast for the
  latent-search models.

A spec is written ``kind`` or ``kind:key=value,key=value``, e.g.
``memory:network=encoder,layer=-2,reduce=mean``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Dict, Optional

import torch
from torch import nn
from torch.nn import functional as F

from .feature_memory import FeatureMemory, positions
from .maps import gaussian_blur

KINDS = ("native", "residual", "memory")
REDUCTIONS = ("max", "mean", "top1", "top10")


@dataclass(frozen=True)
class ScoreSpec:
    kind: str = "native"
    reduce: str = "max"
    network: str = ""          # memory: a name from the model's feature_pyramids() ("" = first)
    layer: int = -2            # memory: index into that network's pyramid (fine -> coarse)
    memory_size: int = 65536   # memory: most stored vectors (a seeded random subset beyond)
    k: int = 1                 # memory: neighbours averaged
    sigma: Optional[float] = None  # map smoothing in pixels (None: the model's map_sigma)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"score kind must be one of {KINDS}, got {self.kind!r}")
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"score reduce must be one of {REDUCTIONS}, got {self.reduce!r}")
        object.__setattr__(self, "layer", int(self.layer))
        object.__setattr__(self, "memory_size", int(self.memory_size))
        object.__setattr__(self, "k", int(self.k))

    @classmethod
    def parse(cls, text: str) -> "ScoreSpec":
        """``kind`` or ``kind:key=value,...`` (see the module docstring)."""
        kind, _, rest = str(text).strip().partition(":")
        types = {f.name: f.type for f in fields(cls)}
        values: Dict = {"kind": kind}
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq or key not in types or key == "kind":
                raise ValueError(f"score option {item!r} in {text!r}: expected key=value with "
                                 f"key one of {sorted(set(types) - {'kind'})}")
            values[key] = value
        for key in ("layer", "memory_size", "k"):
            if key in values:
                values[key] = int(values[key])
        if "sigma" in values:
            values["sigma"] = None if values["sigma"] in ("", "none") else float(values["sigma"])
        return cls(**values)

    @classmethod
    def from_any(cls, value) -> "ScoreSpec":
        if value is None:
            return cls()
        if isinstance(value, ScoreSpec):
            return value
        if isinstance(value, dict):
            return cls(**{k: v for k, v in value.items() if k in cls.__dataclass_fields__})
        return cls.parse(value)

    def to_dict(self) -> Dict:
        return asdict(self)

    def text(self) -> str:
        """The shortest spec that parses back to this one."""
        defaults = ScoreSpec(kind=self.kind)
        relevant = {"native": (), "residual": ("reduce", "sigma"),
                    "memory": ("network", "layer", "reduce", "memory_size", "k", "sigma")}
        options = [f"{name}={getattr(self, name)}" for name in relevant[self.kind]
                   if getattr(self, name) != getattr(defaults, name)]
        return self.kind + (":" + ",".join(options) if options else "")


def reduce_maps(maps: torch.Tensor, how: str) -> torch.Tensor:
    """B x H x W -> B, one number per map."""
    flat = maps.flatten(1)
    if how == "max":
        return flat.amax(dim=1)
    if how == "mean":
        return flat.mean(dim=1)
    fraction = {"top1": 0.01, "top10": 0.10}[how]
    count = max(1, int(round(fraction * flat.shape[1])))
    return flat.topk(count, dim=1).values.mean(dim=1)


class ScoreHead(nn.Module):
    """Applies a ScoreSpec to a model; holds the feature memory when the spec needs one."""

    def __init__(self, spec=None):
        super().__init__()
        self.spec = ScoreSpec.from_any(spec)
        self.memory = (FeatureMemory(self.spec.memory_size, self.spec.k)
                       if self.spec.kind == "memory" else None)

    @property
    def needs_fit(self) -> bool:
        return self.memory is not None

    def sigma(self, model) -> float:
        if self.spec.sigma is not None:
            return float(self.spec.sigma)
        return float(model.hparams.get("map_sigma", model.size / 32.0))

    def features(self, model, batch: torch.Tensor) -> torch.Tensor:
        pyramids = model.feature_pyramids()
        if not pyramids:
            raise ValueError(f"model {model.name!r} exposes no feature maps for a memory score")
        network = self.spec.network or next(iter(pyramids))
        if network not in pyramids:
            raise ValueError(f"model {model.name!r} has no network {network!r} for the memory "
                             f"score; it has {sorted(pyramids)}")
        pyramid = pyramids[network](batch)
        if not -len(pyramid) <= self.spec.layer < len(pyramid):
            raise ValueError(f"layer {self.spec.layer} is out of range: {network!r} has "
                             f"{len(pyramid)} feature maps (resolutions "
                             f"{[tuple(m.shape[-2:]) for m in pyramid]})")
        return pyramid[self.spec.layer]

    @torch.no_grad()
    def fit(self, model, inputs: torch.Tensor, batch_size: int = 32, prepare=None) -> None:
        """Fill the memory with the features of normal images (a no-op for other kinds).
        ``prepare`` maps a batch of inputs to what the network sees (patch mode: windows)."""
        if self.memory is None:
            return
        device = next(model.parameters()).device
        generator = torch.Generator().manual_seed(self.memory.seed)
        vectors, keep = [], 1.0
        for start in range(0, len(inputs), batch_size):
            batch = inputs[start:start + batch_size].to(device)
            found = positions(self.features(model, prepare(batch) if prepare else batch))
            if start == 0:  # keep about 4x the capacity in all, not every position of every image
                expected = len(found) * len(inputs) / len(batch)
                keep = min(1.0, 4 * self.memory.capacity / expected)
            if keep < 1.0:
                chosen = torch.rand(len(found), generator=generator) < keep
                found = found[chosen.to(found.device)]
            vectors.append(found)
        self.memory.fit(torch.cat(vectors))

    def forward(self, model, batch: torch.Tensor):
        from .base import Prediction

        if self.spec.kind == "native":
            return model.infer(batch)
        if self.spec.kind == "residual":
            native = model.infer(batch)
            return Prediction(scores=reduce_maps(native.anomaly_maps, self.spec.reduce),
                              anomaly_maps=native.anomaly_maps,
                              reconstructions=native.reconstructions)
        distances = self.memory.distances(self.features(model, batch))
        maps = F.interpolate(distances.unsqueeze(1), size=batch.shape[-2:], mode="bilinear",
                             align_corners=False).squeeze(1)
        maps = gaussian_blur(maps, self.sigma(model))
        return Prediction(scores=reduce_maps(maps, self.spec.reduce), anomaly_maps=maps,
                          reconstructions=None)

    def with_spec(self, **changes) -> "ScoreHead":
        return ScoreHead(replace(self.spec, **changes))
