"""GANomaly (Akcay et al., ACCV 2018) with a residual per-pixel anomaly map."""

from .model import Ganomaly

__all__ = ["Ganomaly"]
