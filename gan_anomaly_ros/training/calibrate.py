"""`gan-anomaly calibrate`: set a trained checkpoint's threshold again, without retraining.

The held-out normal images are the ones its training kept out (same data folder, same seed and
fraction, checked against the counts the checkpoint recorded). Optionally the score head is
changed first (``score``: a memory score is fitted on the training images, never on the
held-out ones). The threshold rule is the unsupervised default (k robust sigmas), a target
false-alarm rate, or the F1-optimal threshold on a labelled folder of good and defective parts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from ..calibration import calibrate, calibrate_labeled
from ..checkpoint import Checkpoint, file_id, load_checkpoint, save_checkpoint
from ..data.depth import DepthFormat
from ..data.folders import DatasetError, list_split, prepare_split
from ..devices import resolve_device
from .augment import memory_inputs
from .run import predict_arrays, split_holdout


def training_split(checkpoint: Checkpoint, data_dir, progress: bool = True
                   ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normal inputs, training indices, held-out indices) of the run that wrote the
    checkpoint; refuses a folder that is not the data it was trained on."""
    training = checkpoint.training
    if "seed" not in training or "n_holdout" not in training:
        raise ValueError(f"{checkpoint.path}: no record of its held-out split (seed, n_holdout)")
    split = prepare_split(data_dir, "train", checkpoint.preprocessing, progress=progress,
                          depth_format=recorded_depth_format(checkpoint))
    normal = split.inputs[split.labels == 0]
    if len(normal) != training["n_holdout"] + training["n_train"]:
        raise ValueError(f"{data_dir}: {len(normal)} normal training images, but the checkpoint "
                         f"was trained on {training['n_train'] + training['n_holdout']}: "
                         "not the data it was trained on")
    # The recorded count, not today's rule: the same images as in training.
    train_idx, hold_idx = split_holdout(len(normal), training.get("holdout", 0.1),
                                        training["seed"], n_hold=training["n_holdout"])
    return normal, train_idx, hold_idx


def recorded_depth_format(checkpoint: Checkpoint) -> Optional[DepthFormat]:
    """How training read the dataset's depth images (None: detected)."""
    recorded = checkpoint.training.get("depth_format")
    return DepthFormat(**recorded) if recorded else None


def labelled_split_location(folder, data_dir) -> Tuple[Path, str]:
    """(root, split) of a labelled folder: a dataset with test/, or a folder whose subfolders
    are good/ and the defect types. Refuses the training data's own test split (that is what
    `eval` measures) and a folder without good or without defective images, before any work."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"--labeled {folder}: no such folder")
    root, split = (folder, "test") if (folder / "test").is_dir() else (folder.parent, folder.name)
    if (root / split).resolve() == (Path(data_dir) / "test").resolve():
        raise DatasetError(f"--labeled {folder} is the test split of {data_dir}, which `eval` "
                           "measures: calibrate on a separate folder of labelled parts")
    frames = list_split(root, split)
    good = sum(not f.is_anomalous for f in frames)
    if good == 0 or good == len(frames):
        raise DatasetError(f"--labeled {folder}: needs good/ and at least one defect folder "
                           f"with images; it has {good} good and {len(frames) - good} defective")
    return root, split


def recalibrate_checkpoint(checkpoint_path, data_dir, out_path=None, device="auto",
                           k_sigma: float = 3.0, max_false_alarm_rate: Optional[float] = None,
                           labeled=None, score=None, progress: bool = True) -> Dict:
    """Calibrate ``checkpoint_path`` again (see the module docstring) and write it to
    ``out_path`` (default: in place, atomically). Returns the old and new calibration."""
    checkpoint = load_checkpoint(checkpoint_path)
    labelled_at = labelled_split_location(labeled, data_dir) if labeled else None
    normal, train_idx, hold_idx = training_split(checkpoint, data_dir, progress)
    device = resolve_device(device)
    model = checkpoint.model.to(device)
    if score is not None:
        model.set_score(score)
        model.fit_score(memory_inputs(torch.from_numpy(normal[train_idx]),
                                      checkpoint.training.get("augment") or {},
                                      checkpoint.preprocessing.colour_channels,
                                      checkpoint.training.get("seed", 0)),
                        reference=torch.from_numpy(normal[hold_idx]))
    scores, maps = predict_arrays(model, normal[hold_idx], device, progress=progress)
    if labelled_at is not None:
        labelled = prepare_split(*labelled_at, checkpoint.preprocessing, progress=progress,
                                 depth_format=recorded_depth_format(checkpoint))
        labelled_scores, _ = predict_arrays(model, labelled.inputs, device, progress=progress)
        calibration = calibrate_labeled(labelled_scores, labelled.labels, scores, maps,
                                        source=str(labeled))
    else:
        calibration = calibrate(scores, maps, k_sigma=k_sigma,
                                max_false_alarm_rate=max_false_alarm_rate)
    out_path = Path(out_path or checkpoint_path)
    training = {**checkpoint.training, "recalibrated": True}
    save_checkpoint(out_path, model, checkpoint.preprocessing, calibration, training)
    return {"checkpoint": str(out_path), "checkpoint_id": file_id(out_path),
            "score": model.score_spec.text(),
            "old": checkpoint.calibration.to_dict(), "new": calibration.to_dict()}
