"""Our messages survive a real DDS round trip between two separate processes.

This checks the whole build chain: rosidl generation, the typesupport libraries on
LD_LIBRARY_PATH, the rmw, and that scripts/env.sh sets everything a second process needs.
"""

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from process_helpers import start_process, stop_process, wait_for_output, wait_process

pytestmark = pytest.mark.requires_ros

PEER = Path(__file__).resolve().parent / "dds_peers" / "msg_peer.py"
NAN = float("nan")

# Distinctive values; floats exactly representable in float32 so they compare with ==.
ANOMALY_SCORE = {
    "header": {"stamp": {"sec": 1_700_000_123, "nanosec": 456_789_000},
               "frame_id": "camera_color_optical_frame"},
    "score": 3.140625,
    "score_normalized": 0.8125,
    "threshold": 2.5,
    "is_anomaly": True,
    "model_name": "ganomaly",
    "checkpoint_id": "0123456789abcdef",
    "roi": {"x_offset": 11, "y_offset": 22, "height": 33, "width": 44, "do_rectify": True},
    "centroid": {"x": NAN, "y": NAN, "z": NAN},
    "latency_ms": 12.25,
}

_INPUT = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3) / 8 - 0.5  # HxWxC
MODEL_INPUT = {
    "header": {"stamp": {"sec": 42, "nanosec": 7}, "frame_id": "camera_color_optical_frame"},
    "input": {"header": {"stamp": {"sec": 42, "nanosec": 7}, "frame_id": "cam"},
              "height": 2, "width": 3, "encoding": "32FC3", "is_bigendian": 0,
              "step": 3 * 3 * 4, "data": list(_INPUT.tobytes())},
    "color": {"header": {"stamp": {"sec": 42, "nanosec": 7}, "frame_id": "cam"},
              "height": 2, "width": 2, "encoding": "rgb8", "is_bigendian": 0, "step": 6,
              "data": [255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 8, 7]},
    "crop": {"x_offset": 100, "y_offset": 50, "height": 200, "width": 300,
             "do_rectify": False},
    "received": {"sec": 43, "nanosec": 999_999_999},
    "preprocessing_id": "prep-5a5a",
}


def round_trip(ros_env, type_name, values, timeout=30.0):
    """Subscriber process first, then publisher process; return what the subscriber got."""
    topic = f"/test_dds_{type_name.lower()}_{os.getpid()}"
    sub = start_process([sys.executable, PEER, "sub", type_name, topic], env=ros_env)
    pub = None
    try:
        wait_for_output(sub, "READY", timeout)
        pub = start_process([sys.executable, PEER, "pub", type_name, topic, json.dumps(values)],
                            env=ros_env)
        sub_out = wait_process(sub, timeout)
        # Stop the publisher the way Ctrl-C does: it must exit cleanly, not be killed.
        pub_out = stop_process(pub)
        assert pub.returncode == 0 and "STOPPED by SIGINT" in pub_out, pub_out
    finally:
        for proc in (sub, pub):
            if proc is not None and proc.poll() is None:
                stop_process(proc)
    lines = [ln for ln in sub_out.splitlines() if ln.startswith("RECEIVED ")]
    assert lines, f"subscriber got nothing on {topic}:\n{sub_out}\npublisher:\n{pub_out}"
    return json.loads(lines[0][len("RECEIVED "):])


def test_generated_messages_import():
    from gan_anomaly_ros.msg import AnomalyScore, ModelInput

    assert AnomalyScore().score == 0.0
    assert set(ModelInput.get_fields_and_field_types()) >= {"input", "color", "crop"}


def test_anomaly_score_round_trip(ros_env):
    got = round_trip(ros_env, "AnomalyScore", ANOMALY_SCORE)

    assert got["header"] == ANOMALY_SCORE["header"]
    for field in ("score", "score_normalized", "threshold", "latency_ms"):
        assert got[field] == ANOMALY_SCORE[field], field
    assert got["is_anomaly"] is True
    assert got["model_name"] == "ganomaly"
    assert got["checkpoint_id"] == "0123456789abcdef"
    assert got["roi"] == ANOMALY_SCORE["roi"]
    assert all(math.isnan(got["centroid"][axis]) for axis in "xyz"), got["centroid"]


def test_model_input_round_trip(ros_env):
    got = round_trip(ros_env, "ModelInput", MODEL_INPUT)

    for field in ("header", "crop", "received", "preprocessing_id", "color"):
        assert got[field] == MODEL_INPUT[field], field
    image = got["input"]
    assert {k: image[k] for k in ("height", "width", "encoding", "step")} == \
        {"height": 2, "width": 3, "encoding": "32FC3", "step": 36}
    decoded = np.frombuffer(bytes(image["data"]), dtype=np.float32).reshape(2, 3, 3)
    np.testing.assert_array_equal(decoded, _INPUT)
