"""What gets exported: the checkpoint's normalisation and its model's score head in one module,
raw crop in, scores and anomaly maps out, so a runtime needs nothing but the graph."""

from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from ..checkpoint import Checkpoint
from ..models import AnomalyModel
from ..models.score_heads import ScoreSpec
from .errors import ExportError
from .normalization import InputNormalization

# Score kinds whose head calls the model's own ``infer`` (memory heads read feature maps only).
INFER_KINDS = ("native", "residual")


def calls_infer(spec: ScoreSpec) -> bool:
    if spec.kind == "combined":
        return any(calls_infer(part) for part in spec.parts)
    return spec.kind in INFER_KINDS


def check_exportable(model: AnomalyModel) -> None:
    """Refuse a model whose score runs a latent search: its graph would need autograd and an
    optimiser at inference time. A memory score of the same model reads features only."""
    if model.searches_latent and calls_infer(model.score_spec):
        raise ExportError(
            f"model {model.name!r} with score {model.score_spec.text()!r} cannot be exported: "
            "that score searches the latent space for every image (gradient steps inside "
            "inference), which an ONNX or TorchScript graph cannot hold. Score it with the "
            "eager runtime, or give it a memory score, which needs no search "
            "(`gan-anomaly calibrate --model M --data DIR --score memory:network=discriminator`).")


class DeployableModel(nn.Module):
    """forward(raw B x C x S x S) -> (scores B, anomaly maps B x S x S), in eval mode. Voxel
    models take B x 1 x R x R x R grids (identity normalisation) and give B x R x R x R maps."""

    def __init__(self, normalization: nn.Module, model: AnomalyModel):
        super().__init__()
        check_exportable(model)
        self.normalization = normalization
        self.model = model
        self.eval()

    def forward(self, raw: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        prediction = self.model.predict(self.normalization(raw))
        return prediction.scores, prediction.anomaly_maps


def deployable(checkpoint: Checkpoint, device="cpu") -> DeployableModel:
    """The checkpoint's model behind its own normalisation, moved to ``device``."""
    model = checkpoint.model.to(device).eval()
    return DeployableModel(InputNormalization(checkpoint.preprocessing), model)
