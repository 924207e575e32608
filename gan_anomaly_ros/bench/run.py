"""Running the bench: one graph per case, brought up as processes and measured over DDS.

A case is a graph (2d: the default model; voxel: a voxel model; 3d: the default model with
everything rviz shows subscribed, so the heatmap, overlay, anomaly cloud and markers are made
and sent), a camera rate and image size, a runtime (eager, torchscript, onnxruntime) and the
node layout (separate preprocess and scorer processes, or both composed in one). For each:
start the graph (graph.py, as the launch file does), wait for the first verdict, warm up, then
measure for ``duration`` seconds: the probe's observations (summary.py) plus CPU and resident
memory of every node process (psutil).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional

import psutil

from ..bringup import RunningGraph
from ..graph import Graph, NodeSpec, inspection_graph
from .summary import summarize

GRAPHS = ("2d", "voxel", "3d")
RUNTIMES = ("eager", "torchscript", "onnxruntime")


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class BenchCase:
    graph: str
    rate: float
    width: int
    height: int
    runtime: str = "eager"
    composed: bool = False

    @property
    def label(self) -> str:
        layout = "composed" if self.composed else "separate"
        return f"{self.graph} {self.width}x{self.height} {self.rate:g}Hz {self.runtime} {layout}"


@dataclass
class BenchSettings:
    model: str
    voxel_model: Optional[str] = None
    device: str = "auto"
    duration: float = 60.0
    warmup: float = 5.0
    torch_threads: int = 0
    camera_queue: int = 5    # preprocess: frames kept per camera topic while busy
    # runtime -> exported file (bench/cli exports the model before the run)
    exported: Dict[str, str] = field(default_factory=dict)
    profile_dir: Optional[Path] = None
    startup_timeout: float = 120.0


def case_graph(case: BenchCase, settings: BenchSettings) -> Graph:
    """The inspection graph of graph.py with the case's camera, model and runtime."""
    model = settings.voxel_model if case.graph == "voxel" else settings.model
    if not model:
        raise BenchError("the voxel graph needs a voxel checkpoint (--voxel-model; make one "
                         "with `gan-anomaly train --mode voxel ...`)")
    replay = {"rate": case.rate, "synthetic_width": case.width,
              "synthetic_height": case.height}
    exported = settings.exported.get(case.runtime, "")
    if case.runtime != "eager" and not exported:
        raise BenchError(f"runtime {case.runtime} needs an exported model")
    graph = inspection_graph(camera="replay", model=model, device=settings.device,
                             replay=replay, composed=case.composed, runtime=case.runtime,
                             exported_model=exported, camera_queue=settings.camera_queue)
    # torch_threads is a bench setting of the scorer (in the composed process too).
    threads = {"torch_threads": settings.torch_threads}
    nodes = [with_parameters(node, threads) if node.name in ("scorer", "inspection") else node
             for node in graph.nodes]
    return replace(graph, nodes=nodes)


def with_parameters(spec: NodeSpec, parameters: Dict[str, object]) -> NodeSpec:
    return replace(spec, parameters={**spec.parameters, **parameters})


class ProcessMeter:
    """CPU time and resident memory of each node process over the window."""

    def __init__(self, names: List[str], pids: List[int]):
        self.processes = {name: psutil.Process(pid) for name, pid in zip(names, pids)}
        self.start_cpu: Dict[str, float] = {}
        self.peak_rss: Dict[str, int] = {name: 0 for name in names}
        self.started = 0.0

    def cpu_seconds(self, process: psutil.Process) -> float:
        times = process.cpu_times()
        return times.user + times.system

    def start(self) -> None:
        self.started = time.monotonic()
        self.start_cpu = {n: self.cpu_seconds(p) for n, p in self.processes.items()}

    def sample(self) -> None:
        for name, process in self.processes.items():
            try:
                self.peak_rss[name] = max(self.peak_rss[name], process.memory_info().rss)
            except psutil.NoSuchProcess:
                pass

    def result(self) -> Dict[str, Dict[str, float]]:
        elapsed = time.monotonic() - self.started
        out = {}
        for name, process in self.processes.items():
            try:
                cpu = self.cpu_seconds(process) - self.start_cpu[name]
            except psutil.NoSuchProcess:
                cpu = float("nan")
            out[name] = {"cpu_percent": round(100.0 * cpu / elapsed, 1),
                         "rss_mb": round(self.peak_rss[name] / 2**20, 1)}
        return out


class Probe:
    """The bench probe node spinning in a thread of this process (rclpy initialised once)."""

    count = 0

    def __init__(self, visual: bool):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from ..nodes.bench_probe_node import VISUAL_TOPICS, BenchProbeNode

        self._rclpy = rclpy
        if not rclpy.ok():
            rclpy.init()
        # A new name per case: rclpy releases a destroyed node's rosout publisher lazily.
        Probe.count += 1
        self.node = BenchProbeNode(VISUAL_TOPICS if visual else (),
                                   name=f"bench_probe_{Probe.count}")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()


def wait_for_first_verdict(probe: Probe, running: RunningGraph, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not probe.node.observations().verdicts:
        failure = running.failed()
        if failure:
            tail = "".join(line for lines in running.output.values() for line in lines[-5:])
            raise BenchError(f"{failure} before the first verdict:\n{tail}")
        if time.monotonic() > deadline:
            raise BenchError(f"no verdict within {timeout:.0f} s of starting the graph")
        time.sleep(0.2)


def run_case(case: BenchCase, settings: BenchSettings, log=print) -> Dict[str, object]:
    """Bring the case's graph up, measure it, stop it; the case's figures."""
    graph = case_graph(case, settings)
    probe = Probe(visual=case.graph == "3d")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    running = RunningGraph(graph, env=env, echo=False)
    profilers = []
    try:
        wait_for_first_verdict(probe, running, settings.startup_timeout)
        time.sleep(settings.warmup)
        names = [spec.name for spec in running.specs]
        meter = ProcessMeter(names, [p.pid for p in running.processes])
        if settings.profile_dir is not None:
            from .profile import start_profilers
            profilers = start_profilers(settings.profile_dir, case, names,
                                        [p.pid for p in running.processes], settings.duration)
        probe.node.reset()
        meter.start()
        start_ns = time.time_ns()
        end = time.monotonic() + settings.duration
        while time.monotonic() < end:
            meter.sample()
            failure = running.failed()
            if failure:
                raise BenchError(f"{failure} during the measurement")
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        end_ns = time.time_ns()
        processes = meter.result()
        time.sleep(2.0)  # verdicts of the window's last frames, and one more diagnostics report
        result = {"case": case.__dict__ | {"label": case.label},
                  **summarize(probe.node.observations(), start_ns, end_ns),
                  "processes": processes}
        if profilers:
            from .profile import finish_profilers
            result["profile"] = finish_profilers(profilers)
        return result
    finally:
        for profiler in profilers:
            profiler.terminate()
        running.stop()
        probe.close()
