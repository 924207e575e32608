"""Start the node graph as separate processes where `ros2 launch` is not installed.

It reads the same :mod:`gan_anomaly_ros.graph` the launch file reads. Each node is its own
process, talking over DDS exactly as under `ros2 launch`. Ctrl-C (or stop()) sends SIGINT to
every node, as launch does, and kills what has not exited after a grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, List, Optional

from .graph import Graph, NodeSpec, ament_prefixes, ros_arguments


class BringupError(RuntimeError):
    pass


def _default_sigint():
    # A shell starts background jobs with SIGINT ignored, and exec keeps it ignored: nodes
    # started from such a job would then never stop on SIGINT. Restore the default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def find_ament_executable(package: str, executable: str) -> Optional[Path]:
    """lib/<package>/<executable> in an ament prefix, as `ros2 run` finds it."""
    for prefix in ament_prefixes():
        candidate = prefix / "lib" / package / executable
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def node_command(spec: NodeSpec) -> List[str]:
    if spec.module is not None:
        return [sys.executable, "-m", spec.module, *ros_arguments(spec)]
    found = find_ament_executable(spec.package, spec.executable)
    if found is None:
        raise BringupError(f"{spec.package}/{spec.executable} is not installed (not found in "
                           f"AMENT_PREFIX_PATH); install the ROS package {spec.package}")
    return [str(found), *ros_arguments(spec)]


def graph_nodes(graph: Graph) -> List[NodeSpec]:
    """Included launch files are replaced by their single node (no launch package here)."""
    return [include.fallback_node for include in graph.includes] + list(graph.nodes)


class RunningGraph:
    """The processes of a graph; output lines are prefixed with the node name."""

    def __init__(self, graph: Graph, env: Optional[Dict[str, str]] = None, echo=True):
        self.specs = graph_nodes(graph)
        commands = [node_command(spec) for spec in self.specs]  # fail before starting any
        self.echo = echo
        self.output: Dict[str, List[str]] = {spec.name: [] for spec in self.specs}
        self.processes: List[subprocess.Popen] = []
        env = {**(os.environ if env is None else env), **graph.environment}
        for spec, command in zip(self.specs, commands):
            process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True, bufsize=1,
                                       preexec_fn=_default_sigint)
            self.processes.append(process)
            threading.Thread(target=self._relay, args=(spec.name, process), daemon=True).start()

    def _relay(self, name: str, process: subprocess.Popen):
        for line in process.stdout:
            self.output[name].append(line)
            if self.echo:
                print(f"[{name}] {line}", end="", flush=True)

    def failed(self) -> Optional[str]:
        """Name and exit code of a node that has exited, or None while all run."""
        for spec, process in zip(self.specs, self.processes):
            if process.poll() is not None:
                return f"{spec.name} exited with code {process.returncode}"
        return None

    def stop(self, timeout: float = 10.0) -> Dict[str, int]:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        codes = {}
        for spec, process in zip(self.specs, self.processes):
            try:
                codes[spec.name] = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[spec.name] = process.wait()
        return codes

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class StopRequested(Exception):
    """SIGTERM (systemd, docker stop, a supervisor): stop the graph as Ctrl-C does."""


def _raise_stop(signum, _frame):
    raise StopRequested(signal.Signals(signum).name)


def run_until_interrupted(graph: Graph) -> int:
    """`gan-anomaly bringup`: run until Ctrl-C or SIGTERM, or until a node dies; stops every
    node it started before it exits (none is left orphaned); returns an exit code."""
    signal.signal(signal.SIGTERM, _raise_stop)
    running = RunningGraph(graph)
    try:
        while True:
            failure = running.failed()
            if failure:
                print(f"[bringup] {failure}; stopping the graph", file=sys.stderr)
                running.stop()
                return 1
            threading.Event().wait(0.5)
    except (KeyboardInterrupt, StopRequested) as exc:
        reason = "Ctrl-C" if isinstance(exc, KeyboardInterrupt) else str(exc)
        print(f"[bringup] {reason}: stopping nodes", file=sys.stderr)
        running.stop()
        return 0
