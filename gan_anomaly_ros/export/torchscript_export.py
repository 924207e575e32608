"""Checkpoint -> TorchScript (torch.jit.trace): raw crop in, scores and maps out, with the
checkpoint's id and preprocessing fingerprint as an extra file of the archive."""

from __future__ import annotations

import json
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Dict

import torch

from ..checkpoint import Checkpoint
from .deployable import deployable
from .errors import ExportError
from .example_inputs import random_raw_inputs
from .metadata import export_metadata

EXTRA_FILE = "gan_anomaly_ros.json"
EXAMPLE_BATCH = 2


@contextmanager
def _without_deprecation_warnings():
    """torch 2.13 warns that TorchScript is deprecated in favour of torch.export; TorchScript
    is the format asked for here (e.g. libtorch deployments), and the warning says no more."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def export_torchscript(checkpoint: Checkpoint, out, device: str = "cpu") -> Path:
    """Trace the checkpoint's model on ``device`` and write it to ``out`` (atomically).

    A trace records the operations one example ran. Ours branch on the settings and the input
    size only, never on the batch size or the values (FeatureMemory takes a batch-free path
    while tracing), so the trace holds for every batch. It also records the device of the
    tensors it makes, hence one export per device (recorded, and checked when loading)."""
    out = Path(out)
    module = deployable(checkpoint, device)
    example = torch.from_numpy(random_raw_inputs(checkpoint.preprocessing, EXAMPLE_BATCH))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings about sizes taken as constants
            traced = torch.jit.trace(module, (example.to(device),), check_trace=False)
    except Exception as exc:  # noqa: BLE001 - say which model, keep the cause
        raise ExportError(f"TorchScript trace of model {checkpoint.model.name!r} failed: "
                          f"{type(exc).__name__}: {exc}") from exc
    metadata = export_metadata(checkpoint, str(torch.device(device)))
    tmp = out.with_name(out.name + ".tmp")
    try:
        with _without_deprecation_warnings():
            torch.jit.save(traced, str(tmp), _extra_files={EXTRA_FILE: json.dumps(metadata)})
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def read_torchscript_metadata(path) -> Dict[str, str]:
    """The export's metadata, read from the zip archive without loading the module, so that a
    foreign or pickled file is refused before torch reads it."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"exported model {path} does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("/extra/" + EXTRA_FILE)]
            if not names:
                raise ExportError(f"{path} is not a gan_anomaly_ros TorchScript export (no "
                                  f"{EXTRA_FILE} in the archive): make one with "
                                  "`gan-anomaly export CHECKPOINT --format torchscript`")
            return json.loads(archive.read(names[0]))
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        if isinstance(exc, ExportError):
            raise
        raise ExportError(f"{path} is not a readable TorchScript archive (corrupt or "
                          f"truncated?): {exc}") from exc


def load_torchscript(path, device: torch.device):
    try:
        with _without_deprecation_warnings():
            return torch.jit.load(str(path), map_location=device).eval()
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError and friends
        raise ExportError(f"{path}: TorchScript cannot load it (corrupt or made by another "
                          f"torch?): {type(exc).__name__}: {exc}") from exc
