"""The runtimes a scorer can score with: the eager torch model, a TorchScript export, or an
ONNX export under onnxruntime. Each takes raw crops (B x C x S x S float32, resize_crop) and
gives scores B, anomaly maps B x S x S and reconstructions (eager only; None otherwise)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..perception.preprocessing import normalize_input
from .errors import ExportError
from .metadata import check_belongs
from .torchscript_export import load_torchscript, read_torchscript_metadata

RUNTIMES = ("eager", "torchscript", "onnxruntime")
Outputs = Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]


class EagerRuntime:
    """The checkpoint's torch model; normalises with the numpy code training used."""

    name = "eager"

    def __init__(self, checkpoint: Checkpoint, device: torch.device, autocast: bool = False):
        self.model, self.config, self.device = checkpoint.model, checkpoint.preprocessing, device
        # On CUDA: half-precision matrix products where torch deems them safe (opt-in: it moves
        # scores by ~1e-3 relative, so recalibrate or check with `gan-anomaly eval` first).
        self.autocast = bool(autocast) and device.type == "cuda"
        self.description = f"eager torch on {device}" + (" (autocast)" if self.autocast else "")

    def run(self, raw: np.ndarray) -> Outputs:
        return self.run_inputs(np.stack([normalize_input(r, self.config) for r in raw]))

    @torch.no_grad()
    def run_inputs(self, inputs: np.ndarray) -> Outputs:
        """Already normalised model inputs (training's preprocess_frame output)."""
        batch = torch.from_numpy(inputs)
        if self.device.type == "cuda":
            # Page-locked memory lets the copy run by DMA without a staging copy; the model's
            # first kernel waits for it on the same stream, so non_blocking is safe here.
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        else:
            batch = batch.to(self.device)
        with torch.autocast("cuda", enabled=self.autocast):
            prediction = self.model.predict(batch)
        recs = prediction.reconstructions
        return (prediction.scores.float().cpu().numpy(),
                prediction.anomaly_maps.float().cpu().numpy(),
                recs.float().cpu().numpy() if recs is not None else None)


class TorchScriptRuntime:
    name = "torchscript"

    def __init__(self, checkpoint: Checkpoint, path, device: torch.device):
        metadata = read_torchscript_metadata(path)
        check_belongs(metadata, checkpoint, path)
        traced_on = torch.device(metadata.get("device", "cpu"))
        if traced_on.type != device.type:
            raise ExportError(f"{path} was traced on {traced_on} and a trace keeps its device: "
                              f"export it again for {device} (`gan-anomaly export "
                              f"{checkpoint.path} --format torchscript --device {device.type}`)")
        self.module, self.device = load_torchscript(path, device), device
        self.description = f"TorchScript {Path(path).name} on {device}"

    @torch.no_grad()
    def run(self, raw: np.ndarray) -> Outputs:
        scores, maps = self.module(torch.from_numpy(raw).to(self.device))
        return scores.float().cpu().numpy(), maps.float().cpu().numpy(), None


def onnx_providers(device: torch.device):
    """CUDA when the scorer's device is a GPU and this onnxruntime build has CUDA; the CPU
    otherwise (and as CUDA's fallback for any operation it lacks)."""
    import onnxruntime

    if device.type == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}),
                "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxRuntime:
    name = "onnxruntime"

    def __init__(self, checkpoint: Checkpoint, path, device: torch.device):
        import onnxruntime

        path = Path(path)
        if not path.is_file():
            raise ExportError(f"exported model {path} does not exist")
        options = onnxruntime.SessionOptions()
        # As many threads as torch uses (OMP_NUM_THREADS, the scorer's torch_threads), so the
        # runtimes compare fairly and a small shared CPU is not oversubscribed.
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(str(path), options,
                                                        providers=onnx_providers(device))
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ExportError(f"{path} is not a readable ONNX model (corrupt, truncated or not "
                              f"ONNX?): {type(exc).__name__}: {exc}") from exc
        check_belongs(self.session.get_modelmeta().custom_metadata_map, checkpoint, path)
        self.input_name = self.session.get_inputs()[0].name
        self.description = f"onnxruntime {path.name} ({self.session.get_providers()[0]})"

    def run(self, raw: np.ndarray) -> Outputs:
        scores, maps = self.session.run(None, {self.input_name: np.ascontiguousarray(raw)})
        return scores, maps, None


def open_runtime(name: str, checkpoint: Checkpoint, device: torch.device,
                 exported_path=None, autocast: bool = False):
    """The runtime ``name`` for this checkpoint; the exported ones need the exported file."""
    if name not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {name!r}")
    if name == "eager":
        return EagerRuntime(checkpoint, device, autocast)
    if not exported_path:
        fmt = "onnx" if name == "onnxruntime" else "torchscript"
        raise ExportError(f"runtime {name!r} needs the exported model: make it with "
                          f"`gan-anomaly export {checkpoint.path} --format {fmt}`")
    runtime = TorchScriptRuntime if name == "torchscript" else OnnxRuntime
    return runtime(checkpoint, exported_path, device)
