"""Model registry: a checkpoint names its model, and this maps the name to the class."""

from __future__ import annotations

from typing import Dict, Type

from .base import AnomalyModel, Prediction
from .catalog import check_hparams
from .score_heads import ScoreSpec
from .adgan import Adgan
from .anogan import Anogan
from .bigan import BiGAN
from .f_anogan import FAnoGAN
from .ganomaly import Ganomaly
from .ocr_gan import OcrGan
from .skip_ganomaly import SkipGanomaly
from .transgan import TransGAN
from .voxel_gan import VoxelGan

MODELS: Dict[str, Type[AnomalyModel]] = {
    model.name: model for model in (Ganomaly, SkipGanomaly, FAnoGAN, BiGAN, Anogan, Adgan, TransGAN,
                                     OcrGan, VoxelGan)}


def create_model(name: str, channels: int, size: int, score=None, **hparams) -> AnomalyModel:
    """The model ``name`` with these hparams; ``score`` (a ScoreSpec, its dict or text) sets
    its score head, default the paper's ("native")."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
    check_hparams(MODELS[name], hparams)
    model = MODELS[name](channels=channels, size=size, **hparams)
    if score is not None:
        model.set_score(score)
    return model


__all__ = ["AnomalyModel", "Prediction", "MODELS", "ScoreSpec", "create_model"]
