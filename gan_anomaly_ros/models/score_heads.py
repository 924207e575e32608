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
  ``coreset`` < 1 keeps that share of the memory (greedy k-centre selection): faster,
  slightly less accurate (README, "Scores").
- ``combined``: several of the above at once. Each part's score is put in units of its own
  spread on held-out normal images (z = (score - median) / (1.4826 * MAD)) and the image score
  is the largest z: an image is as anomalous as its most anomalous view, e.g. a local feature
  map that finds a scratch, or the global latent that finds a part of the wrong shape. The map
  is the first part's.

A spec is written ``kind`` or ``kind:key=value,key=value``, e.g.
``memory:network=encoder,layer=-2,reduce=mean``, and a combination
``combined(memory:network=critic,layer=-2,reduce=top1 + memory:network=encoder,layer=-1)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Dict, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .feature_memory import FeatureMemory, positions
from .maps import gaussian_blur
from .prediction import Prediction

KINDS = ("native", "residual", "memory", "combined")
REDUCTIONS = ("max", "mean", "top1", "top10")
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class ScoreSpec:
    kind: str = "native"
    reduce: str = "max"
    network: str = ""          # memory: a name from the model's feature_pyramids() ("" = first)
    layer: int = -2            # memory: index into that network's pyramid (fine -> coarse)
    memory_size: int = 65536   # memory: most stored vectors (a seeded random subset beyond)
    k: int = 1                 # memory: neighbours averaged
    coreset: float = 1.0       # memory: share kept by greedy k-centre selection (1 = all)
    sigma: Optional[float] = None  # map smoothing in pixels (None: the model's map_sigma)
    parts: Tuple["ScoreSpec", ...] = ()  # combined: the specs it combines

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"score kind must be one of {KINDS}, got {self.kind!r}")
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"score reduce must be one of {REDUCTIONS}, got {self.reduce!r}")
        object.__setattr__(self, "layer", int(self.layer))
        object.__setattr__(self, "memory_size", int(self.memory_size))
        object.__setattr__(self, "k", int(self.k))
        object.__setattr__(self, "coreset", float(self.coreset))
        if not 0.0 < self.coreset <= 1.0:
            raise ValueError(f"score coreset must be a share in (0, 1], got {self.coreset}")
        parts = tuple(ScoreSpec.from_any(part) for part in self.parts)
        object.__setattr__(self, "parts", parts)
        if (self.kind == "combined") != bool(parts):
            raise ValueError("a combined score needs parts, and only a combined score has them")
        if any(part.kind == "combined" for part in parts):
            raise ValueError("the parts of a combined score cannot be combined scores")

    @classmethod
    def parse(cls, text: str) -> "ScoreSpec":
        """``kind``, ``kind:key=value,...`` or ``combined(spec + spec ...)``."""
        text = str(text).strip()
        if text.startswith("combined(") and text.endswith(")"):
            return cls(kind="combined",
                       parts=tuple(cls.parse(part) for part in text[9:-1].split(" + ")))
        kind, _, rest = text.partition(":")
        types = {f.name for f in fields(cls)} - {"kind", "parts"}
        values: Dict = {"kind": kind}
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq or key not in types:
                raise ValueError(f"score option {item!r} in {text!r}: expected key=value with "
                                 f"key one of {sorted(types)}")
            values[key] = value
        for key in ("layer", "memory_size", "k"):
            if key in values:
                values[key] = int(values[key])
        if "coreset" in values:
            values["coreset"] = float(values["coreset"])
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
        data = asdict(self)
        data["parts"] = [part.to_dict() for part in self.parts]
        return data

    def text(self) -> str:
        """The shortest spec that parses back to this one."""
        if self.kind == "combined":
            return "combined(" + " + ".join(part.text() for part in self.parts) + ")"
        defaults = ScoreSpec(kind=self.kind)
        relevant = {"native": (), "residual": ("reduce", "sigma"),
                    "memory": ("network", "layer", "reduce", "memory_size", "k", "coreset",
                               "sigma")}
        options = [f"{name}={getattr(self, name)}" for name in relevant[self.kind]
                   if getattr(self, name) != getattr(defaults, name)]
        return self.kind + (":" + ",".join(options) if options else "")


def reduce_maps(maps: torch.Tensor, how: str) -> torch.Tensor:
    """B x H x W (or B x D x H x W, voxel maps) -> B, one number per map."""
    flat = maps.flatten(1)
    if how == "max":
        return flat.amax(dim=1)
    if how == "mean":
        return flat.mean(dim=1)
    fraction = {"top1": 0.01, "top10": 0.10}[how]
    # int(): torch.jit.trace hands out sizes as tensors; the map size is fixed anyway.
    count = max(1, int(round(fraction * int(flat.shape[1]))))
    return flat.topk(count, dim=1).values.mean(dim=1)


def _batches(inputs: torch.Tensor, batch_size: int, device, prepare):
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start:start + batch_size].to(device)
        yield prepare(batch) if prepare else batch


class ScoreHead(nn.Module):
    """Applies a ScoreSpec to a model; holds the feature memory (or, for a combination, the
    parts and their normal-score statistics) when the spec needs one."""

    def __init__(self, spec=None):
        super().__init__()
        self.spec = ScoreSpec.from_any(spec)
        self.memory = (FeatureMemory(self.spec.memory_size, self.spec.k,
                                     coreset=self.spec.coreset)
                       if self.spec.kind == "memory" else None)
        self.parts = nn.ModuleList(ScoreHead(part) for part in self.spec.parts)
        if self.parts:
            self.register_buffer("centre", torch.zeros(len(self.parts)))
            self.register_buffer("spread", torch.zeros(len(self.parts)))

    @property
    def needs_fit(self) -> bool:
        return self.memory is not None or len(self.parts) > 0

    @property
    def needs_reference(self) -> bool:
        """A combination puts its parts in units of their spread on unseen normal images."""
        return len(self.parts) > 0

    @property
    def fitted(self) -> bool:
        if self.memory is not None:
            return self.memory.fitted
        if self.parts:
            return bool((self.spread > 0).all()) and all(p.fitted for p in self.parts)
        return True

    def sigma(self, model) -> float:
        if self.spec.sigma is not None:
            return float(self.spec.sigma)
        return float(model.hparams.get("map_sigma", model.size / 32.0))

    def check(self, model) -> None:
        """Fail now, with the choices, if the model cannot give what the spec asks for."""
        probe = torch.zeros(1, model.channels, model.size, model.size,
                            device=next(model.parameters()).device)
        for head in list(self.parts) or [self]:
            if head.memory is not None:
                head.features(model, probe)

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
    def fit(self, model, inputs: torch.Tensor, batch_size: int = 32, prepare=None,
            reference: Optional[torch.Tensor] = None) -> None:
        """Prepare the head on normal images: fill a memory with their features; for a
        combination, fit the parts and measure their scores on ``reference`` (unseen normal
        images). ``prepare`` maps a batch to what the network sees (patch mode: windows)."""
        for part in self.parts:
            part.fit(model, inputs, batch_size, prepare)
        if self.parts:
            if reference is None or len(reference) < 2:
                raise ValueError("a combined score needs at least 2 held-out normal images to "
                                 "put its parts on one scale")
            device = next(model.parameters()).device
            scores = torch.cat([self.part_scores(model, batch)
                                for batch in _batches(reference, batch_size, device, prepare)])
            self.centre = scores.median(dim=0).values
            self.spread = (MAD_TO_SIGMA * (scores - self.centre).abs().median(dim=0).values
                           ).clamp_min(1e-6)
        if self.memory is None:
            return
        device = next(model.parameters()).device
        generator = torch.Generator().manual_seed(self.memory.seed)
        vectors, keep = [], 1.0
        for index, batch in enumerate(_batches(inputs, batch_size, device, prepare)):
            found = positions(self.features(model, batch))
            if index == 0:  # keep about 4x the capacity in all, not every position of every image
                expected = len(found) * len(inputs) / min(batch_size, len(inputs))
                keep = min(1.0, 4 * self.memory.capacity / expected)
            if keep < 1.0:
                chosen = torch.rand(len(found), generator=generator) < keep
                found = found[chosen.to(found.device)]
            vectors.append(found)
        self.memory.fit(torch.cat(vectors))

    def part_scores(self, model, batch: torch.Tensor) -> torch.Tensor:
        """B x parts: every part's raw score."""
        return torch.stack([part(model, batch).scores for part in self.parts], dim=1)

    def forward(self, model, batch: torch.Tensor) -> Prediction:
        if self.spec.kind == "native":
            return model.infer(batch)
        if self.spec.kind == "residual":
            native = model.infer(batch)
            return Prediction(scores=reduce_maps(native.anomaly_maps, self.spec.reduce),
                              anomaly_maps=native.anomaly_maps,
                              reconstructions=native.reconstructions)
        if self.spec.kind == "combined":
            predictions = [part(model, batch) for part in self.parts]
            raw = torch.stack([p.scores for p in predictions], dim=1)
            z = (raw - self.centre) / self.spread
            return Prediction(scores=z.amax(dim=1), anomaly_maps=predictions[0].anomaly_maps,
                              reconstructions=predictions[0].reconstructions)
        distances = self.memory.distances(self.features(model, batch))
        maps = F.interpolate(distances.unsqueeze(1), size=batch.shape[-2:], mode="bilinear",
                             align_corners=False).squeeze(1)
        maps = gaussian_blur(maps, self.sigma(model))
        return Prediction(scores=reduce_maps(maps, self.spec.reduce), anomaly_maps=maps,
                          reconstructions=None)
