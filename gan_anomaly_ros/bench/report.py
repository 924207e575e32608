"""The bench's table (plain text and Markdown) and JSON, with the machine it ran on."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Dict, List

# The CPU target for the default model at 640x480, 30 Hz (README, "Real time").
CPU_TARGET = {"p50": 25.0, "p99": 50.0}

COLUMNS = ("case", "cam Hz", "verdicts/s", "scored/sent", "p50 ms", "p95 ms", "p99 ms",
           "pre ms", "score ms", "lost cam>pre/sync/pre>sc/mailbox", "CPU % (RSS MB)")


def machine() -> Dict[str, object]:
    import torch

    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "torch": torch.__version__,
            "cpu": _cpu_model(), "cuda": torch.cuda.is_available()}
    if info["cuda"]:
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        import onnxruntime
        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.1f}"
    return str(value)


def row(result: Dict) -> List[str]:
    stages = result["stages"]
    lost = "/".join(_fmt(stages.get(k)) for k in (
        "lost_camera_to_preprocess", "lost_in_sync", "lost_preprocess_to_scorer",
        "scorer_dropped"))
    processes = ", ".join(f"{name} {p['cpu_percent']:.0f} ({p['rss_mb']:.0f})"
                          for name, p in result["processes"].items())
    latency = result["latency_ms"]
    return [result["case"]["label"], _fmt(result["camera_hz"]), _fmt(result["verdicts_per_s"]),
            f"{result['scored']}/{result['frames_sent']}", _fmt(latency["p50"]),
            _fmt(latency["p95"]), _fmt(latency["p99"]),
            _fmt(result["stage_ms_p50"]["preprocess_ms"]), _fmt(result["stage_ms_p50"]["score_ms"]),
            lost, processes]


def text_table(results: List[Dict]) -> str:
    rows = [list(COLUMNS)] + [row(r) for r in results]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) for r in rows)


def markdown_table(results: List[Dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(r)) + " |" for r in results]
    return "\n".join(lines)


def target_lines(results: List[Dict]) -> List[str]:
    """How the default-model 640x480 30 Hz cases stand against the CPU target."""
    lines = []
    for r in results:
        case = r["case"]
        if (case["graph"], case["width"], case["height"], case["rate"]) != ("2d", 640, 480, 30):
            continue
        p50, p99 = r["latency_ms"]["p50"], r["latency_ms"]["p99"]
        every = r["scored"] == r["frames_sent"]
        met = p50 <= CPU_TARGET["p50"] and p99 <= CPU_TARGET["p99"] and every
        lines.append(f"target (p50 <= {CPU_TARGET['p50']:g} ms, p99 <= {CPU_TARGET['p99']:g} "
                     f"ms, every frame scored) for {case['label']}: p50 {p50:.1f}, p99 "
                     f"{p99:.1f}, scored {r['scored']}/{r['frames_sent']}: "
                     f"{'met' if met else 'NOT met'}")
    return lines


def write_json(path: Path, results: List[Dict], settings: Dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), "settings": settings,
                                "results": results}, indent=2, default=str))


def write_markdown(path: Path, results: List[Dict], settings: Dict) -> None:
    info = machine()
    text = [f"Machine: {info['cpu']}, {info['cpus']} CPUs, {info['platform']}, torch "
            f"{info['torch']}" + (f", GPU {info['gpu']}" if info.get("gpu") else ", no GPU"),
            f"Settings: {json.dumps(settings, default=str)}", "", markdown_table(results), ""]
    text += target_lines(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text) + "\n")
