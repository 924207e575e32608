"""`gan-anomaly export`: a checkpoint file -> an ONNX or TorchScript file next to it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..checkpoint import load_checkpoint
from ..devices import resolve_device
from .onnx_export import export_onnx
from .torchscript_export import export_torchscript

FORMATS = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
# The runtime that runs each format.
RUNTIME_OF = {"onnx": "onnxruntime", "torchscript": "torchscript"}


def default_export_path(checkpoint_path, fmt: str) -> Path:
    """Next to the checkpoint: model.safetensors -> model.onnx / model.torchscript.pt."""
    return Path(checkpoint_path).with_suffix(FORMATS[fmt])


def export_checkpoint(checkpoint_path, fmt: str, out: Optional[str] = None,
                      device: str = "cpu") -> Path:
    """Export the checkpoint; ExportError / CheckpointError say why one cannot be."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, got {fmt!r}")
    target = resolve_device(device)
    checkpoint = load_checkpoint(checkpoint_path, device="cpu")
    out = Path(out) if out else default_export_path(checkpoint_path, fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "onnx":
        return export_onnx(checkpoint, out)
    return export_torchscript(checkpoint, out, str(target))
