"""The demo: replay camera on synthetic scenes -> preprocess -> scorer, as separate processes.

It brings up the graph from gan_anomaly_ros.graph (as `ros2 launch` would), records the
scores with score_recorder_node, writes heatmap and overlay images, and prints a summary.
Before that, ensure_default_model trains the default model on synthetic scenes if there is
none (or only one made with other settings): the best model that trains in about three
minutes on two CPU cores (README, "The default model").
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .bringup import RunningGraph
from .graph import inspection_graph

DEMO_DATASET = {"n_train": 200, "n_test_good": 20, "n_test_per_defect": 6}
# RGB-D, 64 px, centre crop around the part, the training defaults otherwise.
DEMO_PREPROCESSING = {"mode": "rgbd", "size": 64, "center_crop": 0.4, "normalize": "standardize",
                      "depth_range_m": None}
DEMO_TRAINING = {"model": "f_anogan", "epochs": 30, "batch_size": 32, "seed": 0,
                 "augment": {"rotate": 15.0, "shift": 0.03}}


def default_model_is_current(path: Path) -> bool:
    """True when ``path`` is a readable checkpoint made with today's demo settings."""
    from .checkpoint import CheckpointError, read_metadata

    try:
        metadata = read_metadata(path)
    except CheckpointError as exc:
        print(f"default model unusable ({exc}); training a new one")
        return False
    training = metadata.get("training", {})
    current = (metadata["model"]["name"] == DEMO_TRAINING["model"]
               and training.get("augment") == DEMO_TRAINING["augment"]
               and metadata["preprocessing"].get("normalize") == DEMO_PREPROCESSING["normalize"])
    if not current:
        print(f"default model {path} was made with older demo settings; training a new one")
    return current


def ensure_default_model(path: Path, retrain: bool = False) -> Path:
    """Train the default RGB-D model on synthetic scenes unless it is already there."""
    from .data.synthetic import write_dataset
    from .preprocessing import PreprocessConfig
    from .training import TrainConfig, train_from_folder

    if path.exists() and not retrain and default_model_is_current(path):
        print(f"using the default model {path}")
        return path
    data = path.parent.parent / "synthetic_dataset"
    if not (data / "train" / "good").is_dir():
        print(f"writing synthetic RGB-D scenes to {data}")
        write_dataset(data, seed=0, **DEMO_DATASET)
    print(f"training the default model ({DEMO_TRAINING['model']}, RGB-D, "
          f"{DEMO_PREPROCESSING['size']} px, {DEMO_TRAINING['epochs']} epochs) -> {path}")
    train_from_folder(data, path, PreprocessConfig(**DEMO_PREPROCESSING),
                      TrainConfig(**DEMO_TRAINING))
    return path


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
