"""Run a program (usually a ROS node) as a separate process and stop it like Ctrl-C does.

Output goes to a temporary file, not a pipe: a chatty node can never block on a full pipe,
and the output so far can be read while it runs (see wait_for_output).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _let_children_get_sigint() -> None:
    # A process started in the background by a non-interactive shell has SIGINT ignored, and
    # an ignored signal stays ignored across exec: our children would then ignore SIGINT too.
    # Handling it here (not ignoring) makes exec reset it to default in the children.
    if (signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            and threading.current_thread() is threading.main_thread()):
        signal.signal(signal.SIGINT, signal.default_int_handler)


_let_children_get_sigint()


def start_process(args: list[str], env: dict | None = None, cwd: Path | str = ROOT
                  ) -> subprocess.Popen:
    """Start ``args`` (stdout and stderr together into a temp file) and return the Popen."""
    _let_children_get_sigint()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([str(a) for a in args], env=env, cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    proc.log_file = log  # type: ignore[attr-defined]
    return proc


def start_module(module: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    """``python -m module args...`` with this interpreter."""
    return start_process([sys.executable, "-m", module, *args], env=env)


def read_output(proc: subprocess.Popen) -> str:
    """Everything the process has written so far."""
    log = proc.log_file  # type: ignore[attr-defined]
    log.flush()
    with open(log.fileno(), "rb", closefd=False) as f:
        f.seek(0)
        return f.read().decode(errors="replace")


def wait_for_output(proc: subprocess.Popen, text: str, timeout: float) -> str:
    """Wait until ``text`` appears in the output; raise with the output if it does not
    (or if the process exits first)."""
    deadline = time.monotonic() + timeout
    while True:
        out = read_output(proc)
        if text in out:
            return out
        if proc.poll() is not None or time.monotonic() > deadline:
            state = f"exited with {proc.returncode}" if proc.poll() is not None else "timed out"
            raise AssertionError(f"{text!r} not seen ({state}); output:\n{out}")
        time.sleep(0.05)


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> str:
    """Send SIGINT (like Ctrl-C), wait up to ``timeout`` s, SIGKILL if still running.
    Returns all output; ``proc.returncode`` tells how it ended (negative: killed by signal)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    out = read_output(proc)
    proc.log_file.close()  # type: ignore[attr-defined]
    return out


def wait_process(proc: subprocess.Popen, timeout: float) -> str:
    """Wait for the process to exit by itself (SIGINT after ``timeout``); return output."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    return stop_process(proc)


__all__ = ["ROOT", "start_process", "start_module", "read_output", "wait_for_output",
           "stop_process", "wait_process"]
