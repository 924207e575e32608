"""The exported models the bench compares with eager: made once per bench run, in a temporary
folder, with the same code as `gan-anomaly export`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Dict, Iterable

from ..export.exporting import RUNTIME_OF, export_checkpoint

FORMAT_OF = {runtime: fmt for fmt, runtime in RUNTIME_OF.items()}


def export_for_bench(model: str, runtimes: Iterable[str], device: str = "auto") -> Dict[str, str]:
    """runtime -> exported file of ``model`` for each exported runtime asked for."""
    folder = Path(tempfile.mkdtemp(prefix="gan_anomaly_bench_"))
    exported = {}
    for runtime in runtimes:
        fmt = FORMAT_OF[runtime]
        suffix = ".onnx" if fmt == "onnx" else ".torchscript.pt"
        path = export_checkpoint(model, fmt, str(folder / f"{Path(model).stem}{suffix}"),
                                 device=device)
        print(f"bench: exported {model} for {runtime} -> {path}")
        exported[runtime] = str(path)
    return exported
