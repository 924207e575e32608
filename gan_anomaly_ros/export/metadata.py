"""What every exported file records about its origin, and the check that an export belongs to
the checkpoint a scorer loaded (the calibration, threshold and preprocessing come from there)."""

from __future__ import annotations

import json
from typing import Dict

from ..checkpoint import Checkpoint
from .errors import ExportError

FORMAT = "gan_anomaly_ros.export/1"
INPUT_NOTE = ("raw crop before normalisation, B x C x S x S float32: colour 0..255, depth "
              "metres (0 = invalid); voxel models: B x 1 x R x R x R grids")


def export_metadata(checkpoint: Checkpoint, device: str) -> Dict[str, str]:
    """String key -> string value (ONNX metadata_props take nothing else)."""
    return {"format": FORMAT, "checkpoint_id": checkpoint.checkpoint_id,
            "preprocessing_id": checkpoint.preprocessing.fingerprint(),
            "model": checkpoint.model.name, "score": checkpoint.model.score_spec.text(),
            "input": INPUT_NOTE,
            "input_shape": json.dumps(list(checkpoint.preprocessing.input_shape)),
            "device": device}


def check_belongs(metadata: Dict[str, str], checkpoint: Checkpoint, path) -> None:
    """Refuse a foreign file, or an export of another checkpoint (its calibration and
    preprocessing would not be the ones this scorer applies)."""
    if metadata.get("format") != FORMAT:
        raise ExportError(f"{path} is not a gan_anomaly_ros export (no {FORMAT!r} metadata): "
                          "make one with `gan-anomaly export CHECKPOINT --format ...`")
    exported_from = metadata.get("checkpoint_id")
    if exported_from != checkpoint.checkpoint_id:
        raise ExportError(f"{path} was exported from checkpoint {exported_from}, the scorer's "
                          f"checkpoint is {checkpoint.checkpoint_id} ({checkpoint.path}): "
                          f"export that checkpoint again (`gan-anomaly export {checkpoint.path}`)")
    expected = checkpoint.preprocessing.fingerprint()
    if metadata.get("preprocessing_id") != expected:
        raise ExportError(f"{path} normalises with preprocessing "
                          f"{metadata.get('preprocessing_id')!r}, the checkpoint with "
                          f"{expected!r}: export the checkpoint again")
