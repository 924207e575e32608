"""Training a model on normal images, calibrating it on held-out normal images.

After every epoch the model's score head is prepared on the training images (a memory score
stores their features), the model is calibrated, and it is written as a complete checkpoint
(``<out>.last.safetensors``) with a resumable training state (``<out>.state.pt``, loaded with
``torch.load(weights_only=True)``): the threshold always belongs to the weights and the score
that the checkpoint carries. The final ``<out>`` is the best epoch: highest image AUROC on a
validation split when one is given, otherwise the last epoch. In patch mode the network trains
on one random patch of every image per step. Runs on one process or, under torchrun,
data-parallel over several (see distributed.py). Voxel grids (preprocessing mode "voxel",
N x 1 x R x R x R, for the 3D models) train the same way, without patch mode or the 2D
augmentations (check_voxel_run).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from . import distributed
from ..calibration import Calibration, calibrate
from ..checkpoint import file_id, save_checkpoint
from ..data.depth import DepthFormat
from ..data.folders import (estimate_depth_range, estimate_part_orientation, list_split,
                            prepare_split, read_frame)
from ..devices import resolve_device
from ..metrics import auroc
from ..models import AnomalyModel, create_model
from ..models.tiling import random_patches
from ..perception.part_orientation import MIN_STRENGTH, polar_or_square
from ..perception.preprocessing import PreprocessConfig, crop_warning
from ..progress import EpochProgress, track
from .augment import augment_batch, memory_inputs, parse_augment

STATE_VERSION = 1


@dataclass
class TrainConfig:
    model: str = "f_anogan"  # the best mean image AUROC on the benchmark
    epochs: int = 30
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
    # Score head (models/score_heads.py spec); None: the model's benchmark-chosen default.
    score: Optional[str] = None
    # Patch mode: train on random patch_size crops of the (larger) inputs, score by windows.
    patch_size: Optional[int] = None
    # Training augmentations (training/augment.py), e.g. {"brightness": 0.1, "shift": 0.05}.
    augment: Dict = field(default_factory=dict)
    # Unsupervised threshold: k robust sigmas, or the target false-alarm rate when given.
    k_sigma: float = 3.0
    max_false_alarm_rate: Optional[float] = None
    # torch CPU threads (None: torch's default, OMP_NUM_THREADS).
    threads: Optional[int] = None

    def __post_init__(self):
        if int(self.epochs) < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.max_false_alarm_rate is not None and not 0 < self.max_false_alarm_rate < 1:
            raise ValueError(f"max_false_alarm_rate must be in (0, 1), got "
                             f"{self.max_false_alarm_rate}")
        if self.threads is not None and int(self.threads) < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        self.augment = parse_augment(self.augment)


def check_patch_size(patch_size: Optional[int], image_size: int) -> int:
    """The network's input size: the image size, or a smaller patch (patch mode)."""
    if patch_size is None or int(patch_size) == int(image_size):
        return int(image_size)
    if int(patch_size) > int(image_size):
        raise ValueError(f"--patch-size {patch_size} is larger than the image (--size "
                         f"{image_size}): a patch must fit in the image")
    return int(patch_size)


def check_voxel_run(inputs: np.ndarray, preprocessing: PreprocessConfig, config: TrainConfig
                    ) -> None:
    """Voxel grids need preprocessing mode "voxel" (and the reverse), and take neither patch
    mode nor the augmentations, which are 2D image transforms."""
    voxel = preprocessing.mode == "voxel"
    if inputs.ndim != 2 + preprocessing.spatial_dims:
        raise ValueError(f"inputs of shape {inputs.shape} do not fit preprocessing mode "
                         f"{preprocessing.mode!r}: expected N x "
                         f"{' x '.join(map(str, preprocessing.input_shape))}")
    if voxel and config.augment:
        raise ValueError(f"augmentations {sorted(config.augment)} (--augment) are 2D image "
                         "transforms and cannot be applied to voxel grids: train voxel models "
                         "without --augment")
    if voxel and config.patch_size is not None and int(config.patch_size) != preprocessing.size:
        raise ValueError(f"patch mode (--patch-size {config.patch_size}) is not supported for "
                         "voxel grids: a voxel model sees the whole grid")


@dataclass
class LabelledInputs:
    inputs: np.ndarray
    labels: np.ndarray


# A threshold from a handful of held-out images is a guess (the robust spread of 5 scores can
# be off by a factor of two): small training sets keep at least this many out when they can.
MIN_HOLDOUT = 20


def holdout_count(n: int, fraction: float) -> int:
    """round(fraction * n), but at least min(MIN_HOLDOUT, n // 4) and 2, leaving 2 to train."""
    wanted = max(int(round(n * fraction)), min(MIN_HOLDOUT, n // 4), 2)
    return int(min(wanted, n - 2))


def split_holdout(n: int, fraction: float, seed: int, n_hold: Optional[int] = None
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """Indices (train, held out): ``n_hold`` (default holdout_count) images chosen by a seeded
    permutation are held out."""
    if n < 4:
        raise ValueError(f"need at least 4 normal training images, got {n}")
    n_hold = holdout_count(n, fraction) if n_hold is None else int(n_hold)
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
        starts = track(starts, total=len(starts), desc="scoring", unit="batch")
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


def training_batch(model, images: torch.Tensor, config: TrainConfig, colour_channels: int
                   ) -> torch.Tensor:
    """What the network trains on: a random patch of each image in patch mode, augmented."""
    batch = random_patches(images, model.size)
    return augment_batch(batch, config.augment, colour_channels)


def train_epoch(model, data, optimizers, config, epoch, device, info,
                colour_channels: int = 3) -> Dict[str, float]:
    model.on_epoch_start(epoch, config.epochs)
    model.train()
    sums: Dict[str, float] = {}
    batches = epoch_batches(len(data), config, epoch, info)
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16,
                              enabled=config.amp and device.type == "cuda")
    for index in batches:
        batch = training_batch(model, data[index].to(device, non_blocking=True), config,
                               colour_channels)
        with autocast:
            logs = model.training_step(batch, optimizers)
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
                 progress: bool = True, depth_format: Optional[DepthFormat] = None):
        self.config, self.preprocessing, self.validation = config, preprocessing, validation
        check_voxel_run(normal_inputs, preprocessing, config)
        # Recorded so that eval and calibrate read the data the way training did.
        self.depth_format = depth_format.to_dict() if depth_format else None
        self.progress = progress
        if config.threads:
            torch.set_num_threads(int(config.threads))
        self.info = distributed.init_from_env(config.device)
        self.device = distributed.device_for(self.info, resolve_device(config.device))
        torch.manual_seed(config.seed)
        train_idx, hold_idx = split_holdout(len(normal_inputs), config.holdout, config.seed)
        self.train_data = torch.from_numpy(normal_inputs[train_idx])
        self.holdout = normal_inputs[hold_idx]
        network_size = check_patch_size(config.patch_size, preprocessing.size)
        self.model = create_model(config.model, preprocessing.channels, network_size,
                                  **config.hparams).to(self.device)
        if self.model.spatial_dims != preprocessing.spatial_dims:
            raise ValueError(f"model {config.model!r} takes {self.model.spatial_dims}D inputs, "
                             f"preprocessing mode {preprocessing.mode!r} gives "
                             f"{preprocessing.spatial_dims}D ones (voxel grids need a voxel "
                             "model such as voxel_gan)")
        self.model.set_score(config.score or self.model.default_score_for(preprocessing.mode))
        self.score_fitted_epoch = None
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
                "calibrated_epoch": self.calibrated_epoch, "augment": self.config.augment,
                "patch_size": self.model.size if self.model.size != self.preprocessing.size
                else None, "depth_format": self.depth_format}

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
    def fit_score(self, epoch: int) -> None:
        """Prepare the score head for this epoch's weights (a memory score stores the training
        images' features); every checkpoint then holds a head that matches its weights."""
        if self.score_fitted_epoch != epoch:
            self.model.fit_score(memory_inputs(self.train_data, self.config.augment,
                                               self.preprocessing.colour_channels,
                                               self.config.seed), self.config.batch_size,
                                 reference=torch.from_numpy(self.holdout))
            self.score_fitted_epoch = epoch

    def calibrate(self) -> Calibration:
        scores, maps = predict_arrays(self.model, self.holdout, self.device, self.config.batch_size)
        return calibrate(scores, maps, k_sigma=self.config.k_sigma,
                         max_false_alarm_rate=self.config.max_false_alarm_rate)

    def validation_auroc(self) -> float:
        scores, _ = predict_arrays(self.model, self.validation.inputs, self.device,
                                   self.config.batch_size)
        return auroc(self.validation.labels, scores)

    def calibration_due(self, epoch: int) -> bool:
        every = max(1, int(self.config.calibrate_every))
        return (self.latest_calibration is None or (epoch + 1) % every == 0
                or epoch == self.config.epochs - 1)

    def end_epoch(self, epoch: int, losses: Dict, seconds: float):
        self.fit_score(epoch)
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
            bar = EpochProgress(self.config.epochs, self.start_epoch,
                                f"training {self.model.name}")
        started = time.perf_counter() - getattr(self, "resumed_seconds", 0.0)
        losses: Dict[str, float] = {}
        calibration = None
        for epoch in range(self.start_epoch, self.config.epochs):
            losses = train_epoch(self.model, self.train_data, self.optimizers, self.config,
                                 epoch, self.device, self.info,
                                 self.preprocessing.colour_channels)
            calibration = self.end_epoch(epoch, losses, time.perf_counter() - started)
            if bar is not None:
                bar.update(epoch, {**losses, "threshold": calibration.threshold})
        if bar is not None:
            bar.close()
        if calibration is None:  # resumed a finished run
            self.fit_score(self.config.epochs - 1)
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


def resolve_preprocessing(data_dir, preprocessing: PreprocessConfig,
                          depth_format: Optional[DepthFormat] = None) -> PreprocessConfig:
    """The preprocessing a run will store: the relative-depth range chosen from the training
    images when it is not given (depth_range_m None), and the part's orientation from the
    training parts (part_orientation None). Warns about a crop smaller than the model
    input."""
    first = next(f for f in list_split(data_dir, "train") if not f.is_anomalous)
    rgb, _ = read_frame(first, replace(preprocessing, mode="rgb", crop_mode="fixed"))
    warning = (crop_warning(preprocessing, rgb.shape[1], rgb.shape[0])
               if preprocessing.crop_mode == "fixed" else None)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if preprocessing.mode == "rgbd" and preprocessing.depth_range_m is None:
        chosen = estimate_depth_range(data_dir, preprocessing, depth_format)
        print(f"relative-depth range from the training images: +-{chosen * 1000:.1f} mm",
              file=sys.stderr)
        preprocessing = replace(preprocessing, depth_range_m=chosen)
    if preprocessing.part_orientation is None:
        k, strength = estimate_part_orientation(data_dir, preprocessing, depth_format)
        print("part orientation from the training parts: " + (
            f"their {k}-fold pattern (strength {strength:.2f})" if k else
            f"principal axes (no angular pattern: strongest {strength:.2f} < "
            f"{MIN_STRENGTH})"), file=sys.stderr)
        preprocessing = replace(preprocessing, part_orientation=k)
    if preprocessing.map_projection is None:
        projection = polar_or_square(preprocessing.part_orientation)
        print(f"map projection: {projection}" + (
            f" (a turned part: {preprocessing.part_orientation}-fold pattern)"
            if projection == "polar" else ""), file=sys.stderr)
        preprocessing = replace(preprocessing, map_projection=projection)
    return preprocessing


def warn_if_threshold_flags_nothing(calibration: Calibration, model: AnomalyModel,
                                    validation: Optional[LabelledInputs], device,
                                    batch_size: int) -> Optional[float]:
    """With validation data: the share of its defective images the final threshold flags, and
    a warning when that is none of them."""
    if validation is None or not validation.labels.any():
        return None
    scores, _ = predict_arrays(model, validation.inputs, device, batch_size)
    flagged = float(np.mean(scores[validation.labels == 1] > calibration.threshold))
    if flagged == 0.0:
        print(f"warning: the calibrated threshold {calibration.threshold:.4g} lies above every "
              f"defective validation image's score (highest {scores.max():.4g}): nothing would "
              "be flagged. See `gan-anomaly calibrate --max-false-alarm-rate` / --labeled.",
              file=sys.stderr)
    return flagged


def train_from_folder(data_dir, out_path, preprocessing: PreprocessConfig, config: TrainConfig,
                      progress: bool = True, validation_dir=None,
                      depth_format: Optional[DepthFormat] = None) -> Dict:
    """`gan-anomaly train`: read train/good, train, calibrate, write the checkpoints."""
    preprocessing = resolve_preprocessing(data_dir, preprocessing, depth_format)
    split = prepare_split(data_dir, "train", preprocessing, progress=progress,
                          depth_format=depth_format)
    validation = None
    if validation_dir is not None:
        val = prepare_split(validation_dir, "test", preprocessing, progress=progress,
                            depth_format=depth_format)
        validation = LabelledInputs(val.inputs, val.labels)
    run = TrainingRun(split.inputs[split.labels == 0], preprocessing, config, out_path,
                      validation, progress, depth_format)
    model, calibration, info = run.run()
    info["data"] = str(Path(data_dir).resolve())
    summary = {"checkpoint": str(out_path), "calibration": calibration.to_dict(),
               "score": model.score_spec.text(), "preprocessing": preprocessing.to_dict(),
               **info}
    if run.info.is_main:
        summary["checkpoint_id"] = file_id(out_path)
        flagged = warn_if_threshold_flags_nothing(calibration, model, validation, run.device,
                                                  config.batch_size)
        if flagged is not None:
            summary["validation_defects_flagged"] = flagged
    distributed.shutdown(run.info)
    return summary
