"""The demo: replay camera on synthetic scenes -> preprocess -> scorer, as separate processes.

It brings up the graph from gan_anomaly_ros.graph (as `ros2 launch` would), records the
scores with score_recorder_node, writes heatmap and overlay images, and prints a summary.
Before that, ensure_default_model trains the default model on synthetic scenes if there is
none (or only one made with other settings): the best model that trains in about three
minutes on two CPU cores (README, "The default model"), its threshold set on a few labelled
parts kept apart from training and test scenes.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Tuple

from .bringup import RunningGraph
from .graph import (COLOR_TOPIC, MODEL_INPUT_TOPIC, SCORE_TOPIC, Graph,
                    inspection_graph)

DEMO_DATASET = {"n_train": 600, "n_test_good": 20, "n_test_per_defect": 6}
# Labelled parts set aside, as a line team would: 30 good, 6 of each defect type, other scenes
# than the training and test ones (seed 7). 20 parts gave a less stable threshold (README).
DEMO_LABELLED = {"n_train": 0, "n_test_good": 30, "n_test_per_defect": 6, "seed": 7}
# RGB-D, 64 px, centre crop around the part, the training defaults otherwise.
DEMO_PREPROCESSING = {"mode": "rgbd", "size": 64, "center_crop": 0.4, "normalize": "standardize",
                      "depth_range_m": None}
# Many scenes for few epochs beat few scenes for many at the same cost (README, "The default
# model"); the model's default score head. One thread: torch's CPU reductions depend on the
# thread count, so this gives the same weights on every machine (GAN runs differ a lot).
DEMO_TRAINING = {"model": "f_anogan", "epochs": 10, "batch_size": 32, "seed": 0, "threads": 1}


def default_model_is_current(path: Path) -> bool:
    """True when ``path`` is a readable checkpoint made with today's demo settings."""
    from .checkpoint import CheckpointError, read_metadata

    try:
        metadata = read_metadata(path)
    except CheckpointError as exc:
        print(f"default model unusable ({exc}); training a new one")
        return False
    from .models import MODELS
    from .models.score_heads import ScoreSpec

    training = metadata.get("training", {})
    # The model's default score for RGB-D today (a default model scored otherwise is retrained).
    score = MODELS[DEMO_TRAINING["model"]].default_score_for(DEMO_PREPROCESSING["mode"])
    current = (metadata["model"]["name"] == DEMO_TRAINING["model"]
               and ScoreSpec.from_any(metadata["model"].get("score")) == ScoreSpec.parse(score)
               and training.get("epochs") == DEMO_TRAINING["epochs"]
               and training.get("n_train", 0) + training.get("n_holdout", 0)
               == DEMO_DATASET["n_train"]
               and f"({DEMO_LABELLED['n_test_good']} good"
               in metadata.get("calibration", {}).get("rule", "")
               and metadata["preprocessing"].get("normalize") == DEMO_PREPROCESSING["normalize"])
    if not current:
        print(f"default model {path} was made with older demo settings; training a new one")
    return current


def write_demo_data(folder: Path) -> Tuple[Path, Path]:
    """The synthetic training/test scenes and the labelled calibration parts (once)."""
    from .data.synthetic import write_dataset

    data, labelled = folder / "synthetic_dataset", folder / "synthetic_labelled"
    if len(list((data / "train" / "good" / "rgb").glob("*.png"))) != DEMO_DATASET["n_train"]:
        print(f"writing synthetic RGB-D scenes to {data}")
        shutil.rmtree(data, ignore_errors=True)
        write_dataset(data, seed=0, **DEMO_DATASET)
    wanted = DEMO_LABELLED["n_test_good"]
    if len(list((labelled / "test" / "good" / "rgb").glob("*.png"))) != wanted:
        print(f"writing labelled calibration parts to {labelled}")
        shutil.rmtree(labelled, ignore_errors=True)
        write_dataset(labelled, **DEMO_LABELLED)
    return data, labelled


def ensure_default_model(path: Path, retrain: bool = False) -> Path:
    """Train the default RGB-D model on synthetic scenes unless it is already there, and set
    its threshold on the labelled parts (F1-optimal, ``calibrate --labeled``)."""
    from .perception.preprocessing import PreprocessConfig
    from .training import TrainConfig, recalibrate_checkpoint, train_from_folder

    if path.exists() and not retrain and default_model_is_current(path):
        print(f"using the default model {path}")
        return path
    data, labelled = write_demo_data(path.parent.parent)
    print(f"training the default model ({DEMO_TRAINING['model']}, RGB-D, "
          f"{DEMO_PREPROCESSING['size']} px, {DEMO_DATASET['n_train']} scenes, "
          f"{DEMO_TRAINING['epochs']} epochs) -> {path}")
    train_from_folder(data, path, PreprocessConfig(**DEMO_PREPROCESSING),
                      TrainConfig(**DEMO_TRAINING))
    calibration = recalibrate_checkpoint(path, data, labeled=labelled / "test")["new"]
    print(f"threshold {calibration['threshold']:.4g}: {calibration['rule']}")
    return path


def threshold_rule(model: Path) -> str:
    from .checkpoint import read_metadata

    return read_metadata(model).get("calibration", {}).get("rule", "unknown")


def split_camera(graph: Graph) -> Tuple[Graph, Graph]:
    """(processing nodes, camera node): the demo starts the camera once the rest listens, so
    that no frame is scored twice or lost while the scorer loads its model."""
    camera = [node for node in graph.nodes if node.name == "replay_camera"]
    rest = [node for node in graph.nodes if node.name != "replay_camera"]
    return (Graph(nodes=rest, includes=graph.includes, environment=graph.environment),
            Graph(nodes=camera, includes=[], environment=graph.environment))


def pipeline_listens(recorder) -> bool:
    """Preprocess and scorer are subscribed and the scorer's output reaches the recorder."""
    return (recorder.count_subscribers(COLOR_TOPIC) > 0
            and recorder.count_subscribers(MODEL_INPUT_TOPIC) > 0
            and recorder.count_publishers(SCORE_TOPIC) > 0)


# Matched subscriptions as the writers see them (diagnostics gauges): the graph as the
# recorder sees it can show an endpoint before the writer has matched it, and a reliable
# writer drops what it sends before that. status name prefix -> gauge.
WRITER_GAUGES = {"preprocess:": "model_input_subscribers", "scorer:": "anomaly_score_subscribers"}


# Counters shown at the end, per node: where a frame went missing, if one did.
SHOWN_COUNTERS = ("received", "processed", "dropped") + tuple(
    f"sync_in.{name}" for name in ("color", "depth", "camera_info"))


class WriterMatches:
    """The latest writer-side gauges of preprocess and scorer, and their frame counters, from
    /diagnostics."""

    def __init__(self, node):
        from diagnostic_msgs.msg import DiagnosticArray

        self.counts = {}
        self.counters = {}   # "preprocess" / "scorer" -> {counter: value}
        node.create_subscription(DiagnosticArray, "/diagnostics", self.on_diagnostics, 10)

    def on_diagnostics(self, message) -> None:
        for status in message.status:
            for prefix, key in WRITER_GAUGES.items():
                if status.name.startswith(prefix):
                    values = {kv.key: kv.value for kv in status.values}
                    if key in values:
                        self.counts[key] = int(values[key])
                    self.counters[prefix.rstrip(":")] = {
                        name: values[name] for name in SHOWN_COUNTERS if name in values}

    def counters_text(self) -> str:
        return "; ".join(f"{node} " + ", ".join(f"{k} {v}" for k, v in values.items())
                         for node, values in sorted(self.counters.items()))

    def all_matched(self) -> bool:
        return all(self.counts.get(key, 0) > 0 for key in WRITER_GAUGES.values())


def run_demo(model: Path, frames: int = 20, output_dir: Path = Path("demo_output"),
             device: str = "auto", timeout: float = 120.0, verbose: bool = False) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from .nodes.score_recorder_node import ScoreRecorderNode, summarize

    # Keep demo traffic on this machine unless the user configured otherwise.
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    # Frames 0..frames-1 once each (the camera loops, but the recorder stops at `frames`).
    processing, camera = split_camera(inspection_graph(
        camera="replay", model=str(model), device=device,
        replay={"source": "synthetic", "rate": 2.0, "synthetic_count": frames,
                "synthetic_defect_ratio": 0.5, "wait_for_subscribers": 1},
        # Every frame is scored once: the first few can reach the scorer in one burst (DDS
        # holds them back until preprocess's writer and the scorer's reader have matched both
        # ways), which a one-slot mailbox would thin out (frame 0 lost about once in ten runs).
        scorer_queue=frames))
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "scores.jsonl").unlink(missing_ok=True)
    print(f"starting preprocess and scorer, then the replay camera; images go to {output_dir}/")
    rclpy.init()
    recorder = ScoreRecorderNode(output_dir=str(output_dir), max_records=frames)
    matches = WriterMatches(recorder)
    executor = SingleThreadedExecutor()
    executor.add_node(recorder)
    deadline = time.monotonic() + timeout
    with RunningGraph(processing, echo=verbose) as running:
        code = wait_for(lambda: pipeline_listens(recorder), executor, [running], deadline,
                        "preprocess and scorer ready")
        # The recorder sees the nodes' endpoints; preprocess's and the scorer's writers may
        # match their readers a moment later, and a frame sent before that is lost between
        # them: wait until both writers report a match.
        code = code or wait_for(matches.all_matched, executor, [running], deadline,
                                "preprocess and scorer matched")
        if code == 0:
            with RunningGraph(camera, echo=verbose) as replay:
                code = wait_for(lambda: len(recorder.records) >= frames, executor,
                                [running, replay], deadline, f"{frames} scores")
                for _ in range(10):  # let the last images and masks arrive
                    executor.spin_once(timeout_sec=0.1)
    summary = summarize(recorder.records)
    recorder.rewrite_records()
    recorder.destroy_node()
    rclpy.try_shutdown()
    print("summary: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                  for k, v in summary.items()))
    print(f"threshold rule: {threshold_rule(model)}")
    print(f"pipeline counters (last diagnostics): {matches.counters_text() or 'none received'}")
    return code


def wait_for(done, executor, graphs, deadline: float, what: str) -> int:
    """Spin until ``done()``; 1 (with the nodes' last output) when a node dies or time is up."""
    while not done():
        executor.spin_once(timeout_sec=0.2)
        failure = next((f for f in (g.failed() for g in graphs) if f), None)
        if failure or time.monotonic() > deadline:
            print(f"demo failed: {failure or f'no {what} in time'}")
            for graph in graphs:
                for name, lines in graph.output.items():
                    print(f"--- output of {name} ---\n" + "".join(lines[-20:]))
            return 1
    return 0
