"""Tests for gan_anomaly_ros.ros.diagnostics.NodeHealth."""

import os
import time

import pytest

try:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    HAVE_ROS = True
except Exception:  # ImportError, or OSError for a missing shared library
    HAVE_ROS = False

pytestmark = pytest.mark.skipif(not HAVE_ROS, reason="rclpy / diagnostic_msgs not importable")


@pytest.fixture
def node(monkeypatch):
    if "ROS_DOMAIN_ID" not in os.environ:  # conftest normally picks a per-session domain
        monkeypatch.setenv("ROS_DOMAIN_ID", "57")
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("health_test", context=context)
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def values(status):
    return {kv.key: kv.value for kv in status.values}


def test_counters_and_levels(node, capfd):
    from gan_anomaly_ros.ros.diagnostics import NodeHealth

    health = NodeHealth(node, task="scoring", hardware_id="d435i-123", period=3600.0)
    assert health.counters() == {"received": 0, "processed": 0, "dropped": 0}
    status = health.status()
    assert status.level == DiagnosticStatus.OK and status.message == "ok"
    assert status.name == "health_test: scoring" and status.hardware_id == "d435i-123"

    health.count("received", 3)
    health.count("processed")
    health.count("custom")
    for _ in range(5):  # logged once (throttled), counted five times
        health.report_error("decode", "bad encoding 'foo'")
    health.report_error("model", "NaN score")
    log = capfd.readouterr().err  # rcutils logs to stderr
    assert log.count("bad encoding") == 1 and "(1 decode error(s) so far)" in log
    assert log.count("NaN score") == 1  # its own throttle, not silenced by "decode"
    assert health.counters() == {"received": 3, "processed": 1, "dropped": 0, "custom": 1,
                                 "errors.decode": 5, "errors.model": 1}
    status = health.status()
    assert status.level == DiagnosticStatus.WARN
    assert "decode x5" in status.message and "model x1" in status.message
    reported = values(status)
    assert float(reported.pop("seconds_since_input")) < 60
    assert float(reported.pop("input_rate_hz")) >= 0
    assert reported == {"received": "3", "processed": "1", "dropped": "0",
                        "custom": "1", "errors.decode": "5", "errors.model": "1"}

    assert health.status().level == DiagnosticStatus.OK  # no new errors since last report
    health.report_error("decode", "again")
    status = health.status()  # errors and nothing processed: ERROR
    assert status.level == DiagnosticStatus.ERROR and "decode x1" in status.message
    assert values(status)["errors.decode"] == "6"
    health.destroy()


def test_diagnostic_array_published(node):
    from rclpy.executors import SingleThreadedExecutor

    from gan_anomaly_ros.ros.diagnostics import NodeHealth

    got = []
    node.create_subscription(DiagnosticArray, "/diagnostics", got.append, 10)
    health = NodeHealth(node, task="capture", period=0.05)
    health.count("received", 2)
    health.report_error("sync", "timeout")
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    deadline = time.monotonic() + 10.0
    while not got and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    executor.shutdown()
    assert got, "no DiagnosticArray on /diagnostics within 10 s"
    status = got[0].status[0]
    assert status.name == "health_test: capture"
    assert values(status)["received"] == "2" and values(status)["errors.sync"] == "1"
    assert got[0].header.stamp.sec > 0
    health.destroy()


def test_no_input_for_a_while_warns_until_frames_return(node):
    from gan_anomaly_ros.ros.diagnostics import NodeHealth

    health = NodeHealth(node, task="scoring", period=3600.0, stale_after=0.2)
    health.count("received")
    assert health.status().level == DiagnosticStatus.OK
    time.sleep(0.3)
    stale = health.status()
    assert stale.level == DiagnosticStatus.WARN and "no input for" in stale.message
    assert float(values(stale)["seconds_since_input"]) >= 0.2
    health.count("received")
    assert health.status().level == DiagnosticStatus.OK


def test_rates_latencies_and_facts_are_reported(node):
    from gan_anomaly_ros.ros.diagnostics import NodeHealth

    health = NodeHealth(node, task="scoring", period=3600.0)
    health.info("device", "cpu")
    health.status()                         # starts a reporting period
    for value in range(1, 101):             # 1 .. 100 ms
        health.count("received")
        health.observe("latency_ms", value)
    time.sleep(0.1)
    reported = values(health.status())
    assert reported["device"] == "cpu"
    assert float(reported["latency_ms_p50"]) == 51.0 and float(reported["latency_ms_p95"]) == 96.0
    assert 100 < float(reported["input_rate_hz"]) < 1000  # 100 frames in a little over 0.1 s
    assert "latency_ms_p50" not in values(health.status())  # a new period: no samples yet
