"""Shared test setup.

* DDS isolation: every test session gets its own ROS_DOMAIN_ID and discovery stays on this
  host, so parallel runs (or a robot on the LAN) never see each other's topics. Set here at
  import time, before any test module imports rclpy.
* ``@pytest.mark.requires_ros``: skips with the reason when rclpy or the generated
  ``gan_anomaly_ros.msg`` cannot be imported (a pip-only core install still runs the core
  tests). With GAN_ANOMALY_REQUIRE_ROS=1 (set by scripts/test.sh) it fails instead, so a
  broken build cannot hide behind skips.
* ``ros_env`` fixture: the environment for child processes (see process_helpers.py).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Repo root: the source package. test/: helpers, imported as `import process_helpers`
# (not `test.process_helpers`: `test` is also a standard-library package).
for _p in (str(ROOT / "test"), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

# 1..101, never 0 (the default every other ROS program on the machine uses).
os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 101)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

# Session fixtures with a small trained checkpoint (test/model_fixtures.py).
pytest_plugins = ["model_fixtures"]


@functools.lru_cache(maxsize=None)
def ros_unavailable_reason() -> str | None:
    """None when rclpy and the generated messages import, else why not."""
    try:
        import rclpy  # noqa: F401
    except Exception as exc:  # ImportError, or a missing shared library (OSError)
        return f"rclpy not importable ({exc}); run `. scripts/env.sh` after scripts/setup.sh"
    try:
        from gan_anomaly_ros.msg import AnomalyScore  # noqa: F401
    except Exception as exc:
        return (f"gan_anomaly_ros.msg not importable ({exc}); build with scripts/setup.sh "
                "and `. scripts/env.sh`")
    return None


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "requires_ros: needs rclpy and the built gan_anomaly_ros messages")


def pytest_runtest_setup(item):
    if item.get_closest_marker("requires_ros") is None:
        return
    reason = ros_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("GAN_ANOMALY_REQUIRE_ROS") == "1":
        pytest.fail(f"GAN_ANOMALY_REQUIRE_ROS=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def ros_env() -> dict:
    """Environment for ROS child processes: this session's domain, localhost discovery,
    unbuffered Python output (so output read on SIGINT is complete).
    Session-scoped (module fixtures use it): do not modify it, use dict(ros_env, KEY=value)."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    # Source tree first, like in this process (its gan_anomaly_ros extends into install/).
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env
