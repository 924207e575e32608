"""Checkpoint -> ONNX: raw crop in (normalisation inside the graph), scores and maps out, any
batch size, the checkpoint's id and preprocessing fingerprint in the model's metadata_props."""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch

from ..checkpoint import Checkpoint
from .deployable import deployable
from .errors import ExportError
from .example_inputs import random_raw_inputs
from .metadata import export_metadata

INPUT_NAME = "raw"
OUTPUT_NAMES = ("scores", "anomaly_maps")
# Not 1: torch.export specialises size-1 dimensions, and the batch must stay free.
EXAMPLE_BATCH = 2


@contextmanager
def _quiet_exporter():
    """The exporters warn at length about things that do not concern our models (torchvision
    ops, deprecations); real failures still raise."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _export(module: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    # The dynamo exporter (torch.export, the default) exports every exportable model of this
    # package with torch 2.13; the TorchScript-based exporter is kept only as a fallback.
    names = dict(input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES))
    try:
        with _quiet_exporter():
            torch.onnx.export(module, (example,), str(path), dynamo=True, external_data=False,
                              verbose=False,
                              dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
                              **names)
        return
    except Exception as exc:  # noqa: BLE001 - any failure: try the other exporter
        first = f"{type(exc).__name__}: {exc}"
    try:
        axes = {name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)}
        with _quiet_exporter():
            torch.onnx.export(module, (example,), str(path), dynamo=False, dynamic_axes=axes,
                              **names)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"ONNX export failed with both exporters. dynamo: {first[:500]} | "
                          f"TorchScript-based: {type(exc).__name__}: {str(exc)[:500]}") from exc


def _check_free_batch(model, path: Path) -> None:
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    if dim.HasField("dim_value"):
        raise ExportError(f"the ONNX export of {path.name} fixed the batch size at "
                          f"{dim.dim_value} (an operation depends on it); it would refuse other "
                          "batch sizes, so it was not written")


def export_onnx(checkpoint: Checkpoint, out) -> Path:
    """Write the checkpoint's model as ONNX to ``out`` (atomically); returns the path."""
    import onnx

    out = Path(out)
    module = deployable(checkpoint, "cpu")  # the graph is device-free: the runtime picks
    example = torch.from_numpy(random_raw_inputs(checkpoint.preprocessing, EXAMPLE_BATCH))
    tmp = out.with_name(out.name + ".tmp")
    try:
        _export(module, example, tmp)
        model = onnx.load(str(tmp))
        _check_free_batch(model, out)
        for key, value in export_metadata(checkpoint, "any").items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(model, str(tmp))
        tmp.replace(out)  # never a half-written file under the real name
    finally:
        tmp.unlink(missing_ok=True)
    return out
