"""Training a model on normal images, then calibrating it on held-out normal images."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from .calibration import Calibration, calibrate
from .checkpoint import save_checkpoint
from .datasets import prepare_split
from .devices import resolve_device
from .models import AnomalyModel, create_model
from .preprocessing import PreprocessConfig


@dataclass
class TrainConfig:
    model: str = "ganomaly"
    epochs: int = 15
    batch_size: int = 32
    seed: int = 0
    # Fraction of the normal training images kept out of training to calibrate the threshold.
    holdout: float = 0.1
    device: str = "auto"
    hparams: Dict = field(default_factory=dict)


def split_holdout(n: int, fraction: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Indices (train, held out); at least 2 held out, at least 2 left to train on."""
    if n < 4:
        raise ValueError(f"need at least 4 normal training images, got {n}")
    n_hold = int(np.clip(round(n * fraction), 2, n - 2))
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_hold:]), np.sort(order[:n_hold])


@torch.no_grad()
def predict_arrays(model: AnomalyModel, inputs: np.ndarray, device, batch_size: int = 32,
                   progress: bool = False):
    """Scores (N) and anomaly maps (N x S x S) as numpy, in eval mode."""
    model.eval()
    scores, maps = [], []
    starts = range(0, len(inputs), batch_size)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc="scoring", unit="batch")
    for start in starts:
        batch = torch.from_numpy(inputs[start:start + batch_size]).to(device)
        prediction = model.predict(batch)
        scores.append(prediction.scores.float().cpu().numpy())
        maps.append(prediction.anomaly_maps.float().cpu().numpy())
    return np.concatenate(scores), np.concatenate(maps)


def fit(model: AnomalyModel, inputs: np.ndarray, config: TrainConfig, device,
        progress: bool = True) -> Dict[str, float]:
    """Train on normal inputs for config.epochs; returns the last epoch's mean losses."""
    generator = torch.Generator().manual_seed(config.seed)
    data = torch.from_numpy(inputs)
    optimizers = model.configure_optimizers()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=config.epochs, desc=f"training {model.name}", unit="epoch")
    epoch_logs: Dict[str, float] = {}
    for epoch in range(config.epochs):
        model.on_epoch_start(epoch, config.epochs)
        model.train()
        order = torch.randperm(len(data), generator=generator)
        sums: Dict[str, float] = {}
        # Drop a last batch of one: BatchNorm cannot train on a single image.
        batches = [order[i:i + config.batch_size] for i in range(0, len(order), config.batch_size)
                   if len(order[i:i + config.batch_size]) > 1]
        for index in batches:
            logs = model.training_step(data[index].to(device), optimizers)
            for key, value in logs.items():
                sums[key] = sums.get(key, 0.0) + value
        epoch_logs = {k: v / max(1, len(batches)) for k, v in sums.items()}
        if bar is not None:
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(epoch_logs.items())[:3]})
            bar.update(1)
    if bar is not None:
        bar.close()
    return epoch_logs


def train_on_inputs(inputs: np.ndarray, preprocessing: PreprocessConfig, config: TrainConfig,
                    progress: bool = True) -> Tuple[AnomalyModel, Calibration, Dict]:
    """Train on a stack of normal model inputs and calibrate on a held-out part."""
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    train_idx, hold_idx = split_holdout(len(inputs), config.holdout, config.seed)
    model = create_model(config.model, preprocessing.channels, preprocessing.size,
                         **config.hparams).to(device)
    started = time.perf_counter()
    last_losses = fit(model, inputs[train_idx], config, device, progress)
    seconds = time.perf_counter() - started
    scores, maps = predict_arrays(model, inputs[hold_idx], device, config.batch_size)
    calibration = calibrate(scores, maps)
    info = {"epochs": config.epochs, "batch_size": config.batch_size, "seed": config.seed,
            "n_train": int(len(train_idx)), "n_holdout": int(len(hold_idx)),
            "train_seconds": round(seconds, 2), "device": str(device),
            "final_losses": last_losses}
    return model, calibration, info


def train_from_folder(data_dir, out_path, preprocessing: PreprocessConfig, config: TrainConfig,
                      progress: bool = True) -> Dict:
    """`gan-anomaly train`: read train/good, train, calibrate, write the checkpoint."""
    split = prepare_split(data_dir, "train", preprocessing, progress=progress)
    normal = split.inputs[split.labels == 0]
    model, calibration, info = train_on_inputs(normal, preprocessing, config, progress)
    info["data"] = str(Path(data_dir).resolve())
    checkpoint_id = save_checkpoint(out_path, model, preprocessing, calibration, info)
    return {"checkpoint": str(out_path), "checkpoint_id": checkpoint_id,
            "calibration": calibration.to_dict(), **info}
