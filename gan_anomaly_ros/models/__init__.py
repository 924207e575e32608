"""Model registry: a checkpoint names its model, and this maps the name to the class."""

from __future__ import annotations

from typing import Dict, Type

from .base import AnomalyModel, Prediction
from .adgan import Adgan
from .anogan import Anogan
from .bigan import BiGAN
from .f_anogan import FAnoGAN
from .ganomaly import Ganomaly
from .skip_ganomaly import SkipGanomaly
from .transgan import TransGAN

MODELS: Dict[str, Type[AnomalyModel]] = {
    model.name: model for model in (Ganomaly, SkipGanomaly, FAnoGAN, BiGAN, Anogan, Adgan, TransGAN)}


def create_model(name: str, channels: int, size: int, **hparams) -> AnomalyModel:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
    return MODELS[name](channels=channels, size=size, **hparams)


__all__ = ["AnomalyModel", "Prediction", "MODELS", "create_model"]
