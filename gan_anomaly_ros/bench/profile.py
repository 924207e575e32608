"""py-spy sampling of the live nodes during a bench window, and a summary of where time went.

py-spy (a sampling profiler that reads the process from outside: the node runs unchanged, at
full speed with --nonblocking) writes collapsed stacks; summarize() counts, per function, the
share of samples in which it is on the stack (inclusive) and at the top (self). Idle threads
(waiting in the executor or the mailbox) are not sampled, so the shares are of busy time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Dict, List

RATE_HZ = 100
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


class ProfileError(RuntimeError):
    pass


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def start_profilers(directory: Path, case, names: List[str], pids: List[int],
                    seconds: float) -> List[subprocess.Popen]:
    executable = shutil.which("py-spy")
    if executable is None:
        raise ProfileError("py-spy is not installed (pip install py-spy; scripts/setup.sh "
                           "installs it from requirements.txt)")
    directory.mkdir(parents=True, exist_ok=True)
    profilers = []
    for name, pid in zip(names, pids):
        output = directory / f"{_slug(case.label)}__{name}.txt"
        process = subprocess.Popen(
            [executable, "record", "--pid", str(pid), "--duration", str(int(seconds)),
             "--rate", str(RATE_HZ), "--format", "raw", "--nonblocking", "--output",
             str(output)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        process.output, process.node = output, name
        profilers.append(process)
    return profilers


def finish_profilers(profilers: List[subprocess.Popen], timeout: float = 30.0) -> Dict:
    """Wait for py-spy to write its files; per node: the file and its top functions."""
    out = {}
    for process in profilers:
        try:
            _, errors = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            errors = "timed out"
        if process.output.is_file():
            summary = summarize(process.output.read_text())
            summary_file = process.output.with_suffix(".summary.txt")
            summary_file.write_text(format_summary(summary))
            out[process.node] = {"stacks": str(process.output), "summary": str(summary_file),
                                 "top_inclusive": summary["inclusive"][:12]}
        else:
            out[process.node] = {"error": (errors or "no output").strip()[-300:]}
    return out


def _function(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    return f"{match['function']} ({Path(match['file']).name})"


def summarize(collapsed: str, top: int = 25) -> Dict:
    inclusive, own = Counter(), Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        count = int(count)
        frames = [_function(f) for f in stack.split(";")]
        total += count
        for function in set(frames):
            inclusive[function] += count
        own[frames[-1]] += count

    def shares(counter):
        return [(name, round(100.0 * n / total, 1)) for name, n in counter.most_common(top)]

    return {"samples": total, "inclusive": shares(inclusive) if total else [],
            "self": shares(own) if total else []}


def format_summary(summary: Dict) -> str:
    lines = [f"{summary['samples']} samples of busy threads"]
    for kind in ("inclusive", "self"):
        lines.append(f"\n{kind} share of samples:")
        lines += [f"  {share:5.1f} %  {name}" for name, share in summary[kind]]
    return "\n".join(lines) + "\n"
