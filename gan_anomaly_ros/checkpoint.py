"""Checkpoints: safetensors weights plus JSON metadata; loading never unpickles anything.

A checkpoint carries everything needed to score live exactly as training did: the model name
and hyper-parameters, the preprocessing settings, and the calibration. Its id is a content hash,
so a robot log can say which file decided.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import torch

from .calibration import Calibration
from .models import MODELS, AnomalyModel, create_model
from .perception.preprocessing import PreprocessConfig

FORMAT = "gan_anomaly_ros.checkpoint/1"
_REQUIRED_KEYS = ("format", "model", "preprocessing", "calibration")


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, foreign or does not fit; the message says which."""


@dataclass
class Checkpoint:
    model: AnomalyModel
    preprocessing: PreprocessConfig
    calibration: Calibration
    checkpoint_id: str
    path: Optional[Path]
    training: Dict


def file_id(path) -> str:
    """First 16 hex digits of the SHA-256 of the file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def save_checkpoint(path, model: AnomalyModel, preprocessing: PreprocessConfig,
                    calibration: Calibration, training: Optional[Dict] = None) -> str:
    """Write the checkpoint atomically; returns its id."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "model": json.dumps(model.describe()),
        "preprocessing": json.dumps(preprocessing.to_dict()),
        "calibration": json.dumps(calibration.to_dict()),
        "training": json.dumps(training or {}),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)  # a crash mid-write never leaves a half checkpoint under the real name
    return file_id(path)


def _looks_pickled(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header's "{" (that
    # length's first byte can be 0x80 too, like a pickle's).
    if head[8:9] == b"{":
        return False
    return head[:1] == b"\x80" or head[:2] == b"PK"  # pickle protocol 2+ / torch.save zip


def read_metadata(path) -> Dict:
    """The checkpoint's metadata (JSON decoded), without loading any weights."""
    from safetensors import safe_open

    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, not a .safetensors file "
                              "(give the file `gan-anomaly train --out` wrote)")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if _looks_pickled(path):
        raise CheckpointError(
            f"{path} is a pickled torch.save file; gan_anomaly_ros only loads safetensors "
            "checkpoints written by `gan-anomaly train`, because unpickling can run code")
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
    except Exception as exc:
        raise CheckpointError(f"{path} is not a valid safetensors file (corrupt or "
                              f"truncated?): {exc}") from exc
    if raw.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a gan_anomaly_ros checkpoint (metadata format "
                              f"{raw.get('format')!r}, expected {FORMAT!r})")
    missing = [k for k in _REQUIRED_KEYS if k not in raw]
    if missing:
        raise CheckpointError(f"{path} lacks metadata {missing}")
    try:
        return {k: json.loads(v) if k != "format" else v for k, v in raw.items()}
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} has corrupt metadata: {exc}") from exc


def read_preprocessing(path) -> PreprocessConfig:
    try:
        return PreprocessConfig.from_dict(read_metadata(path)["preprocessing"])
    except ValueError as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path}: {exc}") from exc


def _build_model(path: Path, description: Dict) -> AnomalyModel:
    name = description.get("name")
    if name not in MODELS:
        raise CheckpointError(f"{path} needs model {name!r}, which this version does not "
                              f"have (available: {', '.join(sorted(MODELS))})")
    try:
        # Checkpoints from before score heads carry no "score": the paper's score.
        return create_model(name, description["channels"], description["size"],
                            score=description.get("score"), **description.get("hparams", {}))
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild model {name!r}: {exc}") from exc


def load_checkpoint(path, device="cpu") -> Checkpoint:
    """Load and validate a checkpoint; raises CheckpointError with the reason."""
    from safetensors.torch import load_file

    path = Path(path)
    metadata = read_metadata(path)
    model = _build_model(path, metadata["model"])
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:
        raise CheckpointError(f"{path}: weights are unreadable (corrupt file?): {exc}") from exc
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit model {model.name!r}: {exc}") from exc
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{path}: weights contain NaN/inf in {bad[:3]}")
    try:
        preprocessing = PreprocessConfig.from_dict(metadata["preprocessing"])
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    # Equal sizes, or a larger input scored window by window (patch mode).
    if preprocessing.channels != model.channels or preprocessing.size < model.size:
        raise CheckpointError(f"{path}: preprocessing ({preprocessing.mode}, {preprocessing.size}"
                              f") does not match the model ({model.channels} channels, "
                              f"{model.size} px)")
    if preprocessing.spatial_dims != model.spatial_dims:
        raise CheckpointError(f"{path}: preprocessing mode {preprocessing.mode!r} gives "
                              f"{preprocessing.spatial_dims}D inputs, model {model.name!r} takes "
                              f"{model.spatial_dims}D inputs")
    if not model.score_head.fitted:
        raise CheckpointError(f"{path}: its score {model.score_spec.text()!r} needs a feature "
                              "memory (fitted on normal images), but the file holds none")
    model.to(device).eval()
    return Checkpoint(model=model, preprocessing=preprocessing,
                      calibration=Calibration.from_dict(metadata["calibration"]),
                      checkpoint_id=file_id(path), path=path,
                      training=metadata.get("training", {}))
