"""The main() shared by our nodes: start, spin until Ctrl-C, shut down cleanly."""

from __future__ import annotations

import signal
import sys
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException


class StartupError(RuntimeError):
    """A node cannot start (bad parameter, unusable checkpoint); the message says why."""


def run_node(factory: Callable[[], "rclpy.node.Node"], args=None) -> None:
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        rclpy.spin(node)
    except StartupError as exc:
        # A clear one-line reason beats a traceback for a wrong parameter or checkpoint.
        print(f"[ERROR] {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # A terminal's Ctrl-C reaches the whole process group and `ros2 launch` then sends a
        # second SIGINT: it must not interrupt the cleanup below with a traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            shutdown = getattr(node, "shutdown", None)
            if shutdown:
                shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
