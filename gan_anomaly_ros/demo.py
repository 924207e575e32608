"""The demo: replay camera on synthetic scenes -> preprocess -> scorer, as separate processes.

It brings up the graph from gan_anomaly_ros.graph (as `ros2 launch` would), records the
scores with score_recorder_node, writes heatmap and overlay images, and prints a summary.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .bringup import RunningGraph
from .graph import inspection_graph


def run_demo(model: Path, frames: int = 10, output_dir: Path = Path("demo_output"),
             device: str = "auto", timeout: float = 120.0, verbose: bool = False) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from .nodes.score_recorder_node import ScoreRecorderNode, summarize

    # Keep demo traffic on this machine unless the user configured otherwise.
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    graph = inspection_graph(camera="replay", model=str(model), device=device,
                             replay={"source": "synthetic", "rate": 2.0,
                                     "synthetic_count": frames, "synthetic_defect_ratio": 0.5})
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "scores.jsonl").unlink(missing_ok=True)
    print(f"starting replay camera, preprocess and scorer; images go to {output_dir}/")
    rclpy.init()
    recorder = ScoreRecorderNode(output_dir=str(output_dir), max_records=frames)
    executor = SingleThreadedExecutor()
    executor.add_node(recorder)
    code = 0
    with RunningGraph(graph, echo=verbose) as running:
        deadline = time.monotonic() + timeout
        while len(recorder.records) < frames:
            executor.spin_once(timeout_sec=0.2)
            failure = running.failed()
            if failure or time.monotonic() > deadline:
                print(f"demo failed: {failure or f'no {frames} scores within {timeout:.0f} s'}")
                for name, lines in running.output.items():
                    print(f"--- output of {name} ---\n" + "".join(lines[-20:]))
                code = 1
                break
        for _ in range(10):  # let the last images and masks arrive
            executor.spin_once(timeout_sec=0.1)
    summary = summarize(recorder.records)
    recorder.destroy_node()
    rclpy.try_shutdown()
    print("summary: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                  for k, v in summary.items()))
    return code
