"""The interface every anomaly model implements, so the scorer runs any of them from a checkpoint.

A model is a torch ``nn.Module`` that knows how to train itself one batch at a time and how to
score a batch: one scalar per image (larger = more anomalous) and a per-pixel anomaly map.
Subclasses implement the paper's scoring as ``infer``; ``predict`` applies the model's score
head (score_heads.py: the paper's score, a reduced residual map, or a feature memory) and, for
inputs larger than the network (patch mode), runs it window by window (tiling.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Dict, List

import torch
from torch import nn

from .prediction import Prediction
from .score_heads import ScoreHead, ScoreSpec, reduce_maps
from .tiling import stitch, tile

FeaturePyramid = Callable[[torch.Tensor], List[torch.Tensor]]


def adam_optimizers(lr: float, betas, **modules: nn.Module) -> Dict[str, torch.optim.Optimizer]:
    """One Adam per named network, same settings (the DCGAN recipe most of our GANs use)."""
    return {name: torch.optim.Adam(module.parameters(), lr=lr, betas=tuple(betas))
            for name, module in modules.items()}


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """zero_grad, backward, step: one update of the networks ``optimizer`` holds."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


class AnomalyModel(nn.Module, ABC):
    """Base class: subclasses set ``name`` and implement the abstract methods."""

    name = "base"
    # The score `gan-anomaly train` gives this model when none is named: the best candidate on
    # the benchmark (benchmarks/score_candidates.py; README, "Scores").
    default_score = "native"
    # Where the benchmark chose another default for one kind of input: preprocessing mode ->
    # score (see default_score_for).
    default_scores_by_mode: Dict[str, str] = {}
    # 2: inputs B x C x S x S and maps B x S x S; 3: voxel grids B x C x R x R x R, maps
    # B x R x R x R (models/voxel_gan; no memory scores, no patch mode).
    spatial_dims = 2
    # True when ``infer`` (the native score) searches the latent space at test time (AnoGAN's
    # mapping): autograd and an optimiser inside inference, which no exported graph can hold.
    searches_latent = False

    @classmethod
    def default_score_for(cls, mode: str) -> str:
        """The score `gan-anomaly train` gives this model for inputs of preprocessing ``mode``
        when none is named."""
        return cls.default_scores_by_mode.get(mode, cls.default_score)

    def __init__(self, channels: int, size: int, **hparams):
        super().__init__()
        self.channels = int(channels)
        self.size = int(size)
        self.hparams: Dict = dict(hparams)
        self.score_head = ScoreHead("native")

    @abstractmethod
    def configure_optimizers(self) -> Dict[str, torch.optim.Optimizer]:
        """Create the optimizers; called once before training."""

    @abstractmethod
    def training_step(self, batch: torch.Tensor, optimizers: Dict[str, torch.optim.Optimizer]
                      ) -> Dict[str, float]:
        """One optimisation step on a batch of normal images; returns the losses for logging."""

    @abstractmethod
    def infer(self, batch: torch.Tensor) -> Prediction:
        """The paper's scores and the model's own anomaly maps for a size x size batch.

        Callers wrap this in torch.no_grad(); a model that optimises at test time (AnoGAN's
        latent search) opens its own torch.enable_grad() block.
        """

    def feature_pyramids(self) -> Dict[str, FeaturePyramid]:
        """The model's networks whose activations a memory score can use: name -> function
        from a batch to its feature maps (B x C x h x w), finest first. First = default."""
        return {}

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        """Called before each training epoch (0-based); multi-phase models switch phase here."""

    # -- scoring --------------------------------------------------------------------------

    @property
    def score_spec(self) -> ScoreSpec:
        return self.score_head.spec

    def set_score(self, spec) -> None:
        """Use another score head (``ScoreSpec``, its dict or its text); a memory or combined
        head is empty until fit_score."""
        device = next(self.parameters()).device
        head = ScoreHead(spec).to(device)
        head.check(self)  # an unknown network or layer fails here, with the choices
        self.score_head = head

    @torch.no_grad()
    def fit_score(self, normal_inputs: torch.Tensor, batch_size: int = 32,
                  reference: torch.Tensor = None) -> None:
        """Prepare the score head on normal training images (fills a feature memory; nothing to
        do for native and residual scores). A combined score also needs ``reference``: unseen
        normal images (the held-out ones) that put its parts on one scale. Inputs larger than
        the network are split like predict does."""
        if not self.score_head.needs_fit:
            return
        was_training = self.training
        self.eval()
        prepare = None
        if normal_inputs.shape[-1] != self.size:
            def prepare(batch):
                return tile(batch, self.size, self.size // 2)[0]
        try:
            self.score_head.fit(self, normal_inputs, batch_size, prepare, reference)
        finally:
            self.train(was_training)

    def predict(self, batch: torch.Tensor) -> Prediction:
        """Scores and anomaly maps (eval mode) with the model's score head, window by window
        when the batch is larger than the network (patch mode)."""
        if batch.shape[-1] == self.size:
            return self.score_head(self, batch)
        tiles, offsets = tile(batch, self.size, self.size // 2)
        per_tile = self.score_head(self, tiles)
        full = batch.shape[-1]
        maps = stitch(per_tile.anomaly_maps, offsets, full)
        reconstructions = (stitch(per_tile.reconstructions, offsets, full)
                           if per_tile.reconstructions is not None else None)
        if self.score_spec.kind in ("native", "combined"):  # scores not made from the map
            scores = per_tile.scores.view(batch.shape[0], len(offsets)).amax(dim=1)
        else:
            scores = reduce_maps(maps, self.score_spec.reduce)
        return Prediction(scores=scores, anomaly_maps=maps, reconstructions=reconstructions)

    def describe(self) -> Dict:
        """What a checkpoint must store to rebuild this model."""
        return {"name": self.name, "channels": self.channels, "size": self.size,
                "hparams": self.hparams, "score": self.score_spec.to_dict()}
