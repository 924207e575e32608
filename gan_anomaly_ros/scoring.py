"""Scoring model inputs with a checkpoint: the core of the scorer node, usable without ROS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch

from .anomaly_map import Box, strongest_region
from .checkpoint import Checkpoint, load_checkpoint
from .devices import resolve_device


class InputMismatchError(ValueError):
    """An input does not have the shape the checkpoint was trained on."""


@dataclass
class ScoreResult:
    score: float
    score_normalized: float
    is_anomaly: bool
    anomaly_map: np.ndarray            # S x S (voxel models: R x R x R) float32, raw units
    reconstruction: Optional[np.ndarray]  # C x S x S (C x R x R x R) or None
    roi: Optional[Box]                 # strongest region in model-input pixels, None if normal
                                       # (and for voxel maps, which have no pixel box)


class Scorer:
    """Loads a checkpoint once and scores CxSxS (or NxCxSxS) float32 inputs; voxel
    checkpoints (preprocessing mode "voxel") score 1xRxRxR grids (or Nx1xRxRxR)."""

    def __init__(self, checkpoint_path, device: str = "auto"):
        self.device = resolve_device(device)
        self.checkpoint: Checkpoint = load_checkpoint(checkpoint_path, device=self.device)
        self.model = self.checkpoint.model
        self.calibration = self.checkpoint.calibration
        self.preprocessing = self.checkpoint.preprocessing

    @property
    def expected_shape(self):
        return self.preprocessing.input_shape

    def check_input(self, array: np.ndarray) -> None:
        expected = self.expected_shape
        if array.ndim != len(expected) + 1 or tuple(array.shape[1:]) != expected:
            raise InputMismatchError(
                f"input shape {tuple(array.shape[-len(expected):])} does not match the "
                f"checkpoint's {self.expected_shape} (mode {self.preprocessing.mode!r}, size "
                f"{self.preprocessing.size})")
        if not np.isfinite(array).all():
            raise InputMismatchError("input contains NaN or infinity")

    @torch.no_grad()
    def score_batch(self, inputs: np.ndarray) -> List[ScoreResult]:
        inputs = np.asarray(inputs, np.float32)
        if inputs.ndim == len(self.expected_shape):
            inputs = inputs[None]
        self.check_input(inputs)
        prediction = self.model.predict(torch.from_numpy(inputs).to(self.device))
        scores = prediction.scores.float().cpu().numpy()
        maps = prediction.anomaly_maps.float().cpu().numpy()
        recs = (prediction.reconstructions.float().cpu().numpy()
                if prediction.reconstructions is not None else [None] * len(scores))
        return [self._result(float(s), m, r) for s, m, r in zip(scores, maps, recs)]

    def score(self, model_input: np.ndarray) -> ScoreResult:
        return self.score_batch(model_input[None])[0]

    def _result(self, score: float, anomaly_map: np.ndarray, reconstruction) -> ScoreResult:
        is_anomaly = self.calibration.is_anomaly(score)
        roi = (strongest_region(anomaly_map, self.calibration.map_threshold)
               if is_anomaly and anomaly_map.ndim == 2 else None)
        return ScoreResult(score=score, score_normalized=self.calibration.normalize(score),
                           is_anomaly=is_anomaly, anomaly_map=anomaly_map,
                           reconstruction=reconstruction, roi=roi)
