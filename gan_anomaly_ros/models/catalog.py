"""What the models are and which hyper-parameters they take, read from their own code, so that
`gan-anomaly models` and the errors for a misspelt --hparam never go out of date."""

from __future__ import annotations

import inspect
import sys
from typing import Dict, List, Type

from .base import AnomalyModel

_NOT_HPARAMS = {"self", "channels", "size"}


def hparam_defaults(model_class: Type[AnomalyModel]) -> Dict[str, object]:
    """Every keyword a model's constructor takes, with its default (None: chosen from other
    settings, e.g. map_sigma = size / 32), following ``**kwargs`` into the parent classes."""
    found: Dict[str, object] = {}
    for klass in model_class.__mro__:
        if "__init__" not in vars(klass) or klass in (AnomalyModel,):
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        for parameter in parameters:
            if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                continue
            if parameter.name not in _NOT_HPARAMS and parameter.name not in found:
                found[parameter.name] = (None if parameter.default is parameter.empty
                                         else parameter.default)
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return found


def summary(model_class: Type[AnomalyModel]) -> str:
    """The docstring of the model's package: its paper and method in a line or two."""
    package = sys.modules[model_class.__module__.rsplit(".", 1)[0]]
    text = inspect.getdoc(package) or model_class.__name__
    return " ".join(text.split("\n\n")[0].split())


def check_hparams(model_class: Type[AnomalyModel], hparams: Dict) -> None:
    unknown = sorted(set(hparams) - set(hparam_defaults(model_class)))
    if unknown:
        raise ValueError(f"unknown hyper-parameter(s) {unknown} for model {model_class.name!r}; "
                         f"it takes: {', '.join(hparam_defaults(model_class))} "
                         "(`gan-anomaly models` lists them with defaults)")


def describe_models(models: Dict[str, Type[AnomalyModel]]) -> List[str]:
    """Lines for `gan-anomaly models`."""
    lines = []
    for name, model_class in models.items():
        lines.append(f"{name}: {summary(model_class)}")
        lines.append(f"    default score: {model_class.default_score}")
        for mode, spec in model_class.default_scores_by_mode.items():
            lines.append(f"    default score for --mode {mode}: {spec}")
        defaults = ", ".join(f"{key}={value!r}" for key, value in
                             hparam_defaults(model_class).items())
        lines.append(f"    hparams: {defaults}")
    return lines
