"""Scoring model inputs with a checkpoint: the core of the scorer node, usable without ROS."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch

from .anomaly_map import Box, strongest_region
from .checkpoint import Checkpoint, load_checkpoint
from .devices import resolve_device
from .export.runtime import RUNTIMES, open_runtime
from .perception.preprocessing import PART_MODES

# Raw colour is 0..255 (resize_crop); a little slack for values that went through float maths.
RAW_COLOUR_RANGE = (-1e-3, 255.0 + 1e-3)


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
    """Loads a checkpoint once and scores its inputs, with one of three runtimes: ``eager``
    (the torch model), ``torchscript`` or ``onnxruntime`` (an export of this checkpoint,
    ``exported_path``, made by `gan-anomaly export`).

    ``score_raw`` / ``score_raw_batch`` take raw crops, C x S x S (or N x C x S x S) float32
    as resize_crop makes them (colour 0..255, depth metres), and work with every runtime: the
    eager one normalises them with the numpy code training used, the exported graphs with
    their own copy of it. ``score`` / ``score_batch`` take already normalised model inputs
    (preprocess_frame, e.g. a prepared dataset) and need the eager runtime. Voxel checkpoints
    (preprocessing mode "voxel") score 1xRxRxR grids (or Nx1xRxRxR) either way."""

    def __init__(self, checkpoint_path, device: str = "auto", runtime: str = "eager",
                 exported_path=None, autocast: bool = False):
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
        self.device = resolve_device(device)
        # An exported runtime scores with its graph: the torch model stays on the CPU.
        self.checkpoint: Checkpoint = load_checkpoint(
            checkpoint_path, device=self.device if runtime == "eager" else "cpu")
        self.model = self.checkpoint.model
        self.calibration = self.checkpoint.calibration
        self.preprocessing = self.checkpoint.preprocessing
        self.runtime = open_runtime(runtime, self.checkpoint, self.device, exported_path,
                                    autocast)

    def warm_up(self, passes: int = 3) -> float:
        """Score a blank input a few times; returns the seconds it took. The first passes
        pay for lazy work (oneDNN kernel choice, CUDA context and kernels, onnxruntime's
        allocations): done at start, the first part on the line is not the slow one."""
        started = time.perf_counter()
        blank = np.zeros((1, *self.expected_shape), np.float32)
        for _ in range(passes):
            self.runtime.run(blank)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - started

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

    def check_raw(self, raw: np.ndarray) -> None:
        """Shape, finiteness and the raw value ranges: a normalised input sent as raw (a
        preprocess node older than this scorer) would otherwise be scored as nonsense."""
        self.check_input(raw)
        colour = raw[:, :self.preprocessing.colour_channels]
        low, high = RAW_COLOUR_RANGE
        if colour.size and (colour.min() < low or colour.max() > high):
            raise InputMismatchError(
                f"raw colour must be 0..255, got {colour.min():.3g}..{colour.max():.3g}: is "
                "the input normalised already (a preprocess node from before raw crops?)")
        if self.preprocessing.mode in PART_MODES and raw.size and np.abs(raw).max() > 1.0:
            raise InputMismatchError(f"{self.preprocessing.mode} inputs lie in [-1, 1] (made "
                                     f"by perception), got {raw.min():.3g}..{raw.max():.3g}")
        if self.preprocessing.mode == "rgbd" and raw[:, -1].min() < 0:
            raise InputMismatchError("raw depth must be metres >= 0 (0 = invalid), got "
                                     f"{raw[:, -1].min():.3g}")

    def score_raw_batch(self, raw: np.ndarray) -> List[ScoreResult]:
        """Raw crops (N x C x S x S, or one C x S x S) -> one result each, any runtime."""
        raw = np.asarray(raw, np.float32)
        if raw.ndim == len(self.expected_shape):
            raw = raw[None]
        self.check_raw(raw)
        scores, maps, recs = self.runtime.run(raw)
        return self._results(scores, maps, recs)

    def score_raw(self, raw: np.ndarray) -> ScoreResult:
        return self.score_raw_batch(raw[None])[0]

    def score_batch(self, inputs: np.ndarray) -> List[ScoreResult]:
        """Normalised model inputs (N x C x S x S, or one C x S x S), eager runtime only."""
        if self.runtime.name != "eager":
            raise InputMismatchError(
                f"the {self.runtime.name} runtime normalises inside its graph: give it raw "
                "crops (score_raw_batch), not normalised model inputs")
        inputs = np.asarray(inputs, np.float32)
        if inputs.ndim == len(self.expected_shape):
            inputs = inputs[None]
        self.check_input(inputs)
        return self._results(*self.runtime.run_inputs(inputs))

    def score(self, model_input: np.ndarray) -> ScoreResult:
        return self.score_batch(model_input[None])[0]

    def _results(self, scores, maps, recs) -> List[ScoreResult]:
        recs = recs if recs is not None else [None] * len(scores)
        return [self._result(float(s), m, r) for s, m, r in zip(scores, maps, recs)]

    def _result(self, score: float, anomaly_map: np.ndarray, reconstruction) -> ScoreResult:
        is_anomaly = self.calibration.is_anomaly(score)
        roi = (strongest_region(anomaly_map, self.calibration.map_threshold)
               if is_anomaly and anomaly_map.ndim == 2 else None)
        return ScoreResult(score=score, score_normalized=self.calibration.normalize(score),
                           is_anomaly=is_anomaly, anomaly_map=anomaly_map,
                           reconstruction=reconstruction, roi=roi)
