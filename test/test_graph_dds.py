"""The whole graph as separate processes over DDS: replay camera -> preprocess -> scorer.

The nodes are started from gan_anomaly_ros.graph exactly as `gan-anomaly bringup` does; this
test process only listens, like a robot arm would.
"""

import math
import time

import numpy as np
import pytest

from gan_anomaly_ros.bringup import RunningGraph
from gan_anomaly_ros.checkpoint import file_id
from gan_anomaly_ros.graph import (ANOMALY_CLOUD_TOPIC, COLOR_TOPIC, COLOUR_SCORE_TOPIC,
                                   DEFECT_MASK_TOPIC, GEOMETRY_SCORE_TOPIC, HEATMAP_TOPIC,
                                   MARKERS_TOPIC, OVERLAY_TOPIC, SCORE_TOPIC, inspection_graph)
from ros_peer import Peer

pytestmark = pytest.mark.requires_ros

FRAMES_WANTED = 12


def listen_to_graph(peer: Peer) -> Peer:
    """Collect what the graph publishes, keyed by camera stamp where it helps."""
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image, PointCloud2
    from visualization_msgs.msg import MarkerArray

    from gan_anomaly_ros.msg import AnomalyScore
    from gan_anomaly_ros.ros.qos import RELIABLE_OUT

    peer.color_stamps, peer.masks, peer.images = set(), {}, {}
    sub = peer.node.create_subscription
    # Reliable, so this listener itself misses no frame (the replay camera publishes reliable).
    sub(Image, COLOR_TOPIC, lambda m: peer.color_stamps.add(stamp_of(m)), RELIABLE_OUT)
    sub(Image, DEFECT_MASK_TOPIC,
        lambda m: peer.masks.__setitem__(stamp_of(m), bool(np.frombuffer(m.data, np.uint8).any())),
        RELIABLE_OUT)
    for topic in (HEATMAP_TOPIC, OVERLAY_TOPIC):
        sub(Image, topic, lambda m, t=topic: peer.images.setdefault(t, m), RELIABLE_OUT)
    sub(PointCloud2, ANOMALY_CLOUD_TOPIC, lambda m: peer.images.setdefault("cloud", m),
        RELIABLE_OUT)
    sub(MarkerArray, MARKERS_TOPIC, lambda m: peer.images.setdefault("markers", m), RELIABLE_OUT)
    peer.scores = peer.listen(AnomalyScore, SCORE_TOPIC, RELIABLE_OUT)
    peer.diagnostics = peer.listen(DiagnosticArray, "/diagnostics")
    return peer


def stamp_of(message):
    return (message.header.stamp.sec, message.header.stamp.nanosec)


def run_graph(model, ros_env, name: str, count: int, done, settle: float = 0.0, listen=None,
              **graph):
    """Bring the replay graph up with this model, listen until ``done(listener)`` (or 90 s or a
    node fails), wait ``settle`` s more, stop it; -> (listener, running graph, exit codes).
    ``listen(peer)``: more subscriptions, made before the graph starts; ``graph``: more
    inspection_graph arguments."""
    graph = inspection_graph(camera="replay", model=str(model), device="cpu",
                             replay={"source": "synthetic", "rate": 4.0, "synthetic_count": count,
                                     "synthetic_defect_ratio": 0.5}, **graph)
    listener = listen_to_graph(Peer(name))
    if listen is not None:
        listen(listener)
    running = RunningGraph(graph, env=ros_env, echo=False)
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and running.failed() is None and not done(listener):
            time.sleep(0.2)
        time.sleep(settle)
    finally:
        codes = running.stop()
        listener.close()
    return listener, running, codes


@pytest.fixture(scope="module")
def graph_run(small_checkpoint, ros_env):
    def done(listener):
        labelled = [s for s in listener.scores if stamp_of(s) in listener.masks]
        return len(labelled) >= FRAMES_WANTED and len(listener.images) == 4

    # settle: one more diagnostics period
    listener, running, codes = run_graph(small_checkpoint, ros_env, "graph_test_listener", 10,
                                         done, settle=1.5)
    yield listener, running, codes


def test_scores_arrive_with_camera_stamps(graph_run, small_checkpoint):
    listener, running, codes = graph_run
    output = {name: "".join(lines) for name, lines in running.output.items()}
    assert len(listener.scores) >= FRAMES_WANTED, f"too few scores; node output: {output}"
    # The camera waits for the pipeline's subscribers, not for this listener: a frame sent
    # before the listener's colour subscription matched (a loaded machine) was never heard.
    first_heard = min(listener.color_stamps)
    for score in listener.scores:
        # The verdict carries the stamp of the camera frame that was scored.
        assert stamp_of(score) in listener.color_stamps or stamp_of(score) < first_heard
        assert score.header.frame_id == "camera_color_optical_frame"
        assert 0.0 <= score.score_normalized <= 1.0
        assert score.is_anomaly == (score.score > score.threshold)
        assert score.model_name == "ganomaly"
        assert score.checkpoint_id == file_id(small_checkpoint)
        # The replay's synthetic scenes hold a part on a table: found and measured.
        assert score.status == score.INSPECTED and score.status_detail == ""
        assert 0.45 < score.centroid.z < 0.55 and abs(score.centroid.x) < 0.05
        assert 0.09 < score.part_size.x < 0.115 and score.valid_depth_fraction > 0.9
        assert 0.0 < score.latency_ms < 10_000
        if score.is_anomaly:
            assert score.roi.width > 0 and score.roi.height > 0


def test_defective_frames_score_higher_on_average(graph_run):
    listener = graph_run[0]
    truth = [(listener.masks[stamp_of(s)], s.score) for s in listener.scores
             if stamp_of(s) in listener.masks]
    good = [score for defective, score in truth if not defective]
    bad = [score for defective, score in truth if defective]
    assert good and bad, f"need both kinds of frames, got {len(good)} good, {len(bad)} defective"
    assert np.mean(bad) > np.mean(good)


def test_heatmap_and_overlay_are_rgb8_frames(graph_run):
    listener = graph_run[0]
    for topic in (HEATMAP_TOPIC, OVERLAY_TOPIC):
        image = listener.images[topic]
        assert image.encoding == "rgb8"
        assert (image.width, image.height) == (640, 480)
        assert stamp_of(image) in listener.color_stamps


def test_the_anomaly_cloud_and_markers_show_the_part(graph_run):
    from gan_anomaly_ros.ros.point_cloud import cloud_array

    listener = graph_run[0]
    cloud = cloud_array(listener.images["cloud"])
    assert cloud.dtype.names == ("x", "y", "z", "rgb", "anomaly")
    assert 1000 < len(cloud) <= 20000
    assert np.isfinite(cloud["anomaly"]).all() and (cloud["anomaly"] >= 0).all()
    assert 0.45 < np.median(cloud["z"]) < 0.55          # on the part, 0.5 m from the camera
    assert stamp_of(listener.images["cloud"]) in listener.color_stamps
    markers = listener.images["markers"].markers
    box = [m for m in markers if m.ns == "part"][0]
    assert box.type == box.CUBE and 0.09 < box.scale.x < 0.115
    assert box.header.frame_id == "camera_color_optical_frame"


def test_scorer_reports_counts_in_diagnostics(graph_run):
    listener = graph_run[0]
    statuses = [s for array in listener.diagnostics for s in array.status if "scorer" in s.name]
    assert statuses, "no diagnostics from the scorer"
    values = {kv.key: kv.value for kv in statuses[-1].values}
    assert int(values["processed"]) > 0
    assert values["model"].startswith("ganomaly (") and values["device"] == "cpu"
    # Some report held verdicts: the end-to-end latency from the camera stamp is there.
    latencies = [float(kv.value) for s in statuses for kv in s.values
                 if kv.key == "latency_from_camera_ms_p50"]
    assert latencies and all(0 < v < 10_000 for v in latencies)


def test_nodes_stop_cleanly_on_sigint(graph_run):
    codes = graph_run[2]
    assert all(code == 0 for code in codes.values()), codes


def test_the_demo_scores_every_replay_frame_once_from_the_first(small_checkpoint, ros_env,
                                                                 tmp_path):
    """`gan-anomaly demo` starts the camera only when preprocess and scorer listen: the
    recorded frames are the replay's first ones, in order, none lost or repeated."""
    import json
    import subprocess
    import sys

    out = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-m", "gan_anomaly_ros.cli", "demo", "--model",
                          str(small_checkpoint), "--frames", "6", "--output", str(out),
                          "--device", "cpu", "--timeout", "90"],
                         env=ros_env, capture_output=True, text=True, timeout=150)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "summary: frames 6, with_truth 6" in run.stdout
    assert "threshold rule: median + 3" in run.stdout
    records = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    # The replay alternates good and defective frames, starting with a good one: the first
    # record is frame 0 (before the camera waited for the pipeline, the first frames were lost).
    # On failure, show what arrived and what the demo printed: this failed about once in ten
    # full-suite runs (frame 0 missing) and never alone; the evidence is for finding out why.
    seen = [(r["stamp_ns"], r["truly_defective"], r.get("status")) for r in records]
    assert records[0]["truly_defective"] is False, f"records {seen}\n{run.stdout[-4000:]}"
    assert sum(r["truly_defective"] for r in records) in (2, 3, 4)
    assert len({r["stamp_ns"] for r in records}) == 6


def test_the_3d_graph_scores_voxel_grids_of_the_part(voxel_checkpoint, ros_env):
    """Camera -> preprocess (part, voxel grid) -> scorer (voxel GAN) across processes: verdicts
    with the part's centroid, the anomaly cloud from the voxel map, and the markers."""
    from gan_anomaly_ros.ros.point_cloud import cloud_array

    listener, running, codes = run_graph(
        voxel_checkpoint, ros_env, "voxel_graph_listener", 4,
        lambda heard: len(heard.scores) >= 3 and {"cloud", "markers"} <= set(heard.images))
    output = {name: "".join(lines)[-2000:] for name, lines in running.output.items()}
    assert len(listener.scores) >= 3, output
    assert all(code == 0 for code in codes.values()), (codes, output)
    for score in listener.scores:
        assert score.status == score.INSPECTED and score.model_name == "voxel_gan"
        assert np.isfinite(score.score) and 0.45 < score.centroid.z < 0.55
    cloud = cloud_array(listener.images["cloud"])
    assert "anomaly" in cloud.dtype.names and len(cloud) > 1000
    # Every point of the part falls in the grid (it spans the part's box plus a margin).
    assert (cloud["anomaly"] > 0).mean() > 0.95
    assert [m for m in listener.images["markers"].markers if m.ns == "part"]
    assert HEATMAP_TOPIC not in listener.images, "a voxel model has no image heatmap"


@pytest.mark.parametrize("mode", ["height", "part_colour"])
def test_a_map_model_is_drawn_back_on_the_image_and_the_part(mode, request, ros_env):
    """Camera -> preprocess (part, relative-height map or orthographic colour view) -> scorer
    (f-AnoGAN on it) across processes: verdicts with the centroid, and the map, made in the
    part's own frame, put back on the image (heatmap, overlay) and on the part's points
    (anomaly cloud)."""
    from gan_anomaly_ros.checkpoint import load_checkpoint
    from gan_anomaly_ros.models import MODELS
    from gan_anomaly_ros.models.score_heads import ScoreSpec
    from gan_anomaly_ros.ros.image_conversion import image_to_rgb
    from gan_anomaly_ros.ros.point_cloud import cloud_array

    checkpoint = request.getfixturevalue(f"{mode}_checkpoint")

    def done(heard):
        return len(heard.scores) >= 3 and {"cloud", "markers", HEATMAP_TOPIC,
                                           OVERLAY_TOPIC} <= set(heard.images)

    listener, running, codes = run_graph(checkpoint, ros_env, f"{mode}_graph_listener", 4,
                                         done)
    output = {name: "".join(lines)[-2000:] for name, lines in running.output.items()}
    assert done(listener), output
    assert all(code == 0 for code in codes.values()), (codes, output)
    # Trained without --score: f-AnoGAN's default for these maps.
    assert load_checkpoint(checkpoint).model.score_spec == \
        ScoreSpec.parse(MODELS["f_anogan"].default_score_for(mode))
    for score in listener.scores:
        assert score.status == score.INSPECTED and score.model_name == "f_anogan"
        assert np.isfinite(score.score) and 0.45 < score.centroid.z < 0.55
    cloud = cloud_array(listener.images["cloud"])
    assert len(cloud) > 1000 and np.isfinite(cloud["anomaly"]).all()
    assert cloud["anomaly"].std() > 0, "every point got the same value: the map was not used"
    heatmap = image_to_rgb(listener.images[HEATMAP_TOPIC])
    drawn = heatmap.any(axis=2)
    assert 0 < drawn.mean() < 0.5, "the heatmap covers the part's crop, not the whole image"
    assert image_to_rgb(listener.images[OVERLAY_TOPIC]).shape == heatmap.shape


def test_a_colour_and_a_height_model_give_one_verdict_per_frame(small_checkpoint,
                                                                height_checkpoint, ros_env):
    """geometry_model: two preprocess + scorer pairs on the same camera and the fusion node,
    all separate processes: /anomaly_score carries one verdict per frame, anomalous exactly
    when either model's verdict on that frame was, inspected only when both inspected it."""
    from gan_anomaly_ros.msg import AnomalyScore
    from gan_anomaly_ros.ros.qos import RELIABLE_OUT

    per_model = {}

    def listen_to_models(peer):
        for source, topic in (("colour", COLOUR_SCORE_TOPIC),
                              ("geometry", GEOMETRY_SCORE_TOPIC)):
            peer.node.create_subscription(
                AnomalyScore, topic, lambda m, s=source: per_model.setdefault(
                    (s, stamp_of(m)), m), RELIABLE_OUT)

    def answered_by_both(heard):
        # The per-model topics match this listener later than /anomaly_score may: compare
        # only frames whose three verdicts it heard.
        return [s for s in heard.scores
                if all((source, stamp_of(s)) in per_model for source in ("colour", "geometry"))]

    def done(heard):
        return sum(s.status == s.INSPECTED for s in answered_by_both(heard)) >= 3

    listener, running, codes = run_graph(small_checkpoint, ros_env, "fusion_graph_listener", 6,
                                         done, settle=1.0, listen=listen_to_models,
                                         geometry_model=str(height_checkpoint))
    output = {name: "".join(lines)[-2000:] for name, lines in running.output.items()}
    assert {"preprocess_geometry", "scorer_geometry", "verdict_fusion"} <= set(output)
    assert all(code == 0 for code in codes.values()), (codes, output)
    assert len({stamp_of(s) for s in listener.scores}) == len(listener.scores)
    for fused in listener.scores:
        assert fused.model_name == "colour:ganomaly+geometry:f_anogan" or \
            fused.status != fused.INSPECTED
    compared = answered_by_both(listener)
    assert sum(s.status == s.INSPECTED for s in compared) >= 3, output
    for fused in compared:
        pair = [per_model[(source, stamp_of(fused))] for source in ("colour", "geometry")]
        if fused.status == fused.INSPECTED:
            assert all(m.status == m.INSPECTED for m in pair)
            assert fused.is_anomaly == any(m.is_anomaly for m in pair)
            assert 0.45 < fused.centroid.z < 0.55
        else:
            assert fused.is_anomaly
            assert any(m.status != m.INSPECTED for m in pair)


def test_bringup_stops_its_nodes_on_sigterm(small_checkpoint, ros_env):
    """What systemd, docker stop and supervisors send: bringup stops every node it started
    and exits 0, leaving none orphaned."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    def node_pids():
        """The node processes bringup started (children of it, or orphans of it: those are
        re-parented, so they are found by their command line of this test's ROS domain)."""
        found = []
        for proc in Path("/proc").iterdir():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                environ = (proc / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if "gan_anomaly_ros.nodes." in cmdline and marker in environ:
                found.append(int(proc.name))
        return found

    marker = f"GAN_ANOMALY_TEST_MARKER={time.monotonic_ns()}".encode()

    bringup = subprocess.Popen(
        [sys.executable, "-m", "gan_anomaly_ros.cli", "bringup", "--camera", "replay",
         "--model", str(small_checkpoint), "--device", "cpu"],
        env=dict(ros_env, GAN_ANOMALY_TEST_MARKER=marker.decode().split("=", 1)[1]),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(node_pids()) < 3:
            assert time.monotonic() < deadline and bringup.poll() is None, "nodes did not start"
            time.sleep(0.2)
        time.sleep(2.0)  # let them get past startup
        bringup.send_signal(signal.SIGTERM)
        output, _ = bringup.communicate(timeout=60)
        assert bringup.returncode == 0, output
        assert "SIGTERM: stopping nodes" in output
        deadline = time.monotonic() + 10
        while node_pids():
            assert time.monotonic() < deadline, f"orphaned node processes: {node_pids()}"
            time.sleep(0.2)
    finally:  # whatever failed above, leave no process behind for the next tests
        if bringup.poll() is None:
            bringup.kill()
        for pid in node_pids():
            os.kill(pid, signal.SIGKILL)


def rss_mb(pid: int) -> float:
    from pathlib import Path

    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_a_90_hz_flood_for_a_minute_keeps_memory_flat_and_counts_drops(small_checkpoint,
                                                                        ros_env):
    """Faster than the pipeline can score: every stage keeps running, memory does not grow,
    and what was not scored is counted (the scorer's dropped inputs; frames the preprocess
    node's synchroniser saw against the sets it made)."""
    graph = inspection_graph(camera="replay", model=str(small_checkpoint), device="cpu",
                             replay={"source": "synthetic", "rate": 90.0, "synthetic_count": 6,
                                     "synthetic_defect_ratio": 0.5})
    listener = listen_to_graph(Peer("flood_listener"))
    running = RunningGraph(graph, env=ros_env, echo=False)
    memory = {}
    try:
        started = time.monotonic()
        while time.monotonic() - started < 75 and running.failed() is None:
            elapsed = time.monotonic() - started
            if 15 <= elapsed and "early" not in memory:   # after start-up and model loading
                memory["early"] = [rss_mb(p.pid) for p in running.processes]
            time.sleep(0.5)
        memory["late"] = [rss_mb(p.pid) for p in running.processes]
    finally:
        failure = running.failed()
        codes = running.stop()
        listener.close()
    output = {name: "".join(lines)[-3000:] for name, lines in running.output.items()}
    assert failure is None and all(code == 0 for code in codes.values()), (failure, codes,
                                                                          output)
    growth = [late - early for early, late in zip(memory["early"], memory["late"])]
    assert max(growth) < 60, f"resident memory grew by {growth} MB over a minute: {memory}"
    latest = {}
    for array in listener.diagnostics:
        for status in array.status:
            latest[status.name.split(":")[0]] = {kv.key: int(kv.value) for kv in status.values
                                                 if kv.value.isdigit()}
    camera, preprocess, scorer = latest["replay_camera"], latest["preprocess"], latest["scorer"]
    counts = f"camera {camera}, preprocess {preprocess}, scorer {scorer}, memory {memory}"
    # Frames faster than the scorer can take them (at least 20 Hz on a loaded 2-core CPU).
    assert camera["processed"] > 60 * 20, counts
    # Each node's last report is its own snapshot, up to a report period (1 s) apart: allow
    # two periods of frames between stages.
    lag = 2 * 90
    assert preprocess["sync_in.color"] <= camera["processed"] + lag, counts
    assert scorer["received"] <= preprocess["processed"] + lag, counts
    # The scorer could not keep up: it dropped (and counted) what it had no time for...
    assert scorer["dropped"] > 0, counts
    # ... and still answered every input it received: scored, or not inspected (SKIPPED for
    # the dropped ones; up to two may be waiting or in the model at the last report).
    answered = scorer["processed"] + scorer.get("not_inspected", 0)
    assert scorer["received"] - 2 <= answered <= scorer["received"], counts
    assert len(listener.scores) > 100, counts
    from gan_anomaly_ros.msg import AnomalyScore

    skipped = [s for s in listener.scores if s.status == AnomalyScore.SKIPPED]
    assert skipped, counts
    assert all(s.is_anomaly and math.isnan(s.score) and "busy" in s.status_detail
               for s in skipped)
