"""Training a model on normal images, calibrating it on held-out normal images.

After every epoch the model is calibrated and written as a complete checkpoint
(``<out>.last.safetensors``), with a resumable training state (``<out>.state.pt``, loaded with
``torch.load(weights_only=True)``). The final ``<out>`` is the best epoch: highest image AUROC
on a validation split when one is given, otherwise the last epoch. Runs on one process or, under
torchrun, data-parallel over several (see distributed.py).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from . import distributed
from .calibration import Calibration, calibrate
from .checkpoint import file_id, save_checkpoint
from .datasets import prepare_split
from .devices import resolve_device
from .metrics import auroc
from .models import AnomalyModel, create_model
from .preprocessing import PreprocessConfig

STATE_VERSION = 1


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
    # bfloat16 autocast on CUDA (no effect on CPU).
    amp: bool = True
    log_dir: Optional[str] = None
    resume: bool = False
    # Recalibrate every N epochs (and always after the last). Latent-search models (AnoGAN,
    # ADGAN, TransGAN) pay a search per held-out image, so they calibrate less often; the
    # per-epoch checkpoint then carries the newest calibration and says from which epoch.
    calibrate_every: int = 1


@dataclass
class LabelledInputs:
    inputs: np.ndarray
    labels: np.ndarray


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


def epoch_batches(n: int, config: TrainConfig, epoch: int, info: distributed.DistInfo):
    """This rank's batches of one epoch; the order depends only on (seed, epoch), so a resumed
    run sees the same batches as an uninterrupted one."""
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    order = distributed.shard(torch.randperm(n, generator=generator), info)
    # Drop a last batch of one: BatchNorm cannot train on a single image.
    return [order[i:i + config.batch_size] for i in range(0, len(order), config.batch_size)
            if len(order[i:i + config.batch_size]) > 1]


def train_epoch(model, data, optimizers, config, epoch, device, info) -> Dict[str, float]:
    model.on_epoch_start(epoch, config.epochs)
    model.train()
    sums: Dict[str, float] = {}
    batches = epoch_batches(len(data), config, epoch, info)
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16,
                              enabled=config.amp and device.type == "cuda")
    for index in batches:
        with autocast:
            logs = model.training_step(data[index].to(device, non_blocking=True), optimizers)
        for key, value in logs.items():
            sums[key] = sums.get(key, 0.0) + value
    if info.enabled:
        # Keep BatchNorm statistics (and any data-dependent re-initialisation) identical.
        distributed.broadcast_model(model)
    return {k: v / max(1, len(batches)) for k, v in sums.items()}


class TrainingRun:
    """One training run: model, optimizers, held-out calibration, checkpoints, logs."""

    def __init__(self, normal_inputs: np.ndarray, preprocessing: PreprocessConfig,
                 config: TrainConfig, out_path=None, validation: Optional[LabelledInputs] = None,
                 progress: bool = True):
        self.config, self.preprocessing, self.validation = config, preprocessing, validation
        self.progress = progress
        self.info = distributed.init_from_env(config.device)
        self.device = distributed.device_for(self.info, resolve_device(config.device))
        torch.manual_seed(config.seed)
        train_idx, hold_idx = split_holdout(len(normal_inputs), config.holdout, config.seed)
        self.train_data = torch.from_numpy(normal_inputs[train_idx])
        self.holdout = normal_inputs[hold_idx]
        self.model = create_model(config.model, preprocessing.channels, preprocessing.size,
                                  **config.hparams).to(self.device)
        if self.info.enabled:
            distributed.broadcast_model(self.model)
        self.optimizers = distributed.wrap_optimizers(self.model.configure_optimizers(), self.info)
        self.out_path = Path(out_path) if out_path else None
        self.start_epoch, self.best_metric, self.history = 0, -np.inf, []
        self.latest_calibration, self.calibrated_epoch = None, None
        self.writer = None
        if config.log_dir and self.info.is_main:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(config.log_dir)
        if config.resume:
            self.load_state()

    # --- files -------------------------------------------------------------------------
    def path(self, suffix: str) -> Path:
        return self.out_path.with_name(self.out_path.stem + suffix)

    def info_dict(self, epoch: int, seconds: float, losses: Dict) -> Dict:
        return {"epochs": epoch + 1, "epochs_planned": self.config.epochs,
                "batch_size": self.config.batch_size, "seed": self.config.seed,
                "holdout": self.config.holdout,
                "n_train": int(len(self.train_data)), "n_holdout": int(len(self.holdout)),
                "train_seconds": round(seconds, 2), "device": str(self.device),
                "world_size": self.info.world_size, "final_losses": losses,
                "calibrated_epoch": self.calibrated_epoch}

    def save_state(self, epoch: int, seconds: float):
        state = {"version": STATE_VERSION, "epoch": epoch, "seconds": seconds,
                 "best_metric": float(self.best_metric), "config": asdict(self.config),
                 "model": self.model.state_dict(),
                 "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                 "history": self.history, "torch_rng": torch.get_rng_state()}
        tmp = self.path(".state.pt.tmp")
        torch.save(state, tmp)
        tmp.replace(self.path(".state.pt"))

    def load_state(self):
        path = self.path(".state.pt") if self.out_path else None
        if path is None or not path.exists():
            raise ValueError(f"--resume: no training state {path} (written after each epoch)")
        state = torch.load(path, map_location=self.device, weights_only=True)
        if state.get("version") != STATE_VERSION or state["config"]["model"] != self.config.model:
            raise ValueError(f"{path} is from another run (model {state['config']['model']!r})")
        self.model.load_state_dict(state["model"])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.start_epoch = state["epoch"] + 1
        self.best_metric, self.history = state["best_metric"], state["history"]
        torch.set_rng_state(state["torch_rng"].cpu())  # noise drawn in training steps continues
        self.resumed_seconds = state["seconds"]

    # --- the loop ------------------------------------------------------------------------
    def calibrate(self) -> Calibration:
        scores, maps = predict_arrays(self.model, self.holdout, self.device, self.config.batch_size)
        return calibrate(scores, maps)

    def validation_auroc(self) -> float:
        scores, _ = predict_arrays(self.model, self.validation.inputs, self.device,
                                   self.config.batch_size)
        return auroc(self.validation.labels, scores)

    def calibration_due(self, epoch: int) -> bool:
        every = max(1, int(self.config.calibrate_every))
        return (self.latest_calibration is None or (epoch + 1) % every == 0
                or epoch == self.config.epochs - 1)

    def end_epoch(self, epoch: int, losses: Dict, seconds: float):
        if self.calibration_due(epoch):
            self.latest_calibration, self.calibrated_epoch = self.calibrate(), epoch
        calibration = self.latest_calibration
        record = {"epoch": epoch, **losses, "threshold": calibration.threshold}
        metric = float(epoch)  # without validation data the newest epoch is the best
        if self.validation is not None:
            record["val_image_auroc"] = metric = self.validation_auroc()
        self.history.append(record)
        if self.writer is not None:
            for key, value in record.items():
                if key != "epoch":
                    self.writer.add_scalar(f"train/{key}", value, epoch)
        if self.out_path is None or not self.info.is_main:
            return calibration
        info = self.info_dict(epoch, seconds, losses)
        save_checkpoint(self.path(".last.safetensors"), self.model, self.preprocessing,
                        calibration, info)
        if metric >= self.best_metric and (self.validation is not None
                                           or self.calibrated_epoch == epoch):
            if self.calibrated_epoch != epoch:  # a new best must carry its own calibration
                calibration = self.latest_calibration = self.calibrate()
                self.calibrated_epoch = epoch
                info = self.info_dict(epoch, seconds, losses)
            self.best_metric = metric
            save_checkpoint(self.out_path, self.model, self.preprocessing, calibration,
                            {**info, "best_epoch": epoch})
        self.save_state(epoch, seconds)
        return calibration

    def run(self) -> Tuple[AnomalyModel, Calibration, Dict]:
        bar = None
        if self.progress and self.info.is_main:
            from tqdm import tqdm
            bar = tqdm(total=self.config.epochs, initial=self.start_epoch,
                       desc=f"training {self.model.name}", unit="epoch")
        started = time.perf_counter() - getattr(self, "resumed_seconds", 0.0)
        losses: Dict[str, float] = {}
        calibration = None
        for epoch in range(self.start_epoch, self.config.epochs):
            losses = train_epoch(self.model, self.train_data, self.optimizers, self.config,
                                 epoch, self.device, self.info)
            calibration = self.end_epoch(epoch, losses, time.perf_counter() - started)
            if bar is not None:
                bar.set_postfix({k: f"{v:.3g}" for k, v in list(losses.items())[:3]})
                bar.update(1)
        if bar is not None:
            bar.close()
        if calibration is None:  # resumed a finished run
            calibration = self.calibrate()
        if self.writer is not None:
            self.writer.close()
        distributed.barrier(self.info)
        info = self.info_dict(self.config.epochs - 1, time.perf_counter() - started, losses)
        return self.model, calibration, info


def train_on_inputs(inputs: np.ndarray, preprocessing: PreprocessConfig, config: TrainConfig,
                    progress: bool = True) -> Tuple[AnomalyModel, Calibration, Dict]:
    """Train on a stack of normal model inputs and calibrate on a held-out part (no files)."""
    return TrainingRun(inputs, preprocessing, config, progress=progress).run()


def train_from_folder(data_dir, out_path, preprocessing: PreprocessConfig, config: TrainConfig,
                      progress: bool = True, validation_dir=None) -> Dict:
    """`gan-anomaly train`: read train/good, train, calibrate, write the checkpoints."""
    split = prepare_split(data_dir, "train", preprocessing, progress=progress)
    validation = None
    if validation_dir is not None:
        val = prepare_split(validation_dir, "test", preprocessing, progress=progress)
        validation = LabelledInputs(val.inputs, val.labels)
    run = TrainingRun(split.inputs[split.labels == 0], preprocessing, config, out_path,
                      validation, progress)
    model, calibration, info = run.run()
    info["data"] = str(Path(data_dir).resolve())
    summary = {"checkpoint": str(out_path), "calibration": calibration.to_dict(), **info}
    if run.info.is_main:
        summary["checkpoint_id"] = file_id(out_path)
    distributed.shutdown(run.info)
    return summary


def recalibrate_checkpoint(checkpoint_path, data_dir, out_path=None, device="auto",
                           k_sigma: float = 3.0, progress: bool = True) -> Dict:
    """`gan-anomaly calibrate`: calibrate a trained checkpoint again on the held-out normal
    images its training kept out (same data folder, same seed and fraction), with the current
    rule and ``k_sigma``; weights and preprocessing stay. Written to ``out_path`` (default: in
    place, atomically). Returns the old and new calibration."""
    from .checkpoint import load_checkpoint

    checkpoint = load_checkpoint(checkpoint_path)
    training = checkpoint.training
    if "seed" not in training or "n_holdout" not in training:
        raise ValueError(f"{checkpoint_path}: no record of its held-out split (seed, n_holdout)")
    split = prepare_split(data_dir, "train", checkpoint.preprocessing, progress=progress)
    normal = split.inputs[split.labels == 0]
    fraction = training.get("holdout", training["n_holdout"] / max(1, len(normal)))
    _, hold_idx = split_holdout(len(normal), fraction, training["seed"])
    if len(hold_idx) != training["n_holdout"] or len(normal) != (training["n_holdout"]
                                                                 + training["n_train"]):
        raise ValueError(f"{data_dir}: {len(normal)} normal training images, but the checkpoint "
                         f"was trained on {training['n_train'] + training['n_holdout']}: "
                         "not the data it was trained on")
    device = resolve_device(device)
    model = checkpoint.model.to(device)
    scores, maps = predict_arrays(model, normal[hold_idx], device, progress=progress)
    calibration = calibrate(scores, maps, k_sigma=k_sigma)
    out_path = Path(out_path or checkpoint_path)
    save_checkpoint(out_path, model, checkpoint.preprocessing, calibration,
                    {**training, "recalibrated": True})
    return {"checkpoint": str(out_path), "checkpoint_id": file_id(out_path),
            "old": checkpoint.calibration.to_dict(), "new": calibration.to_dict()}
