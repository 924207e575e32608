"""The main() shared by our nodes: start, spin until Ctrl-C, shut down cleanly."""

from __future__ import annotations

import signal
import sys
from typing import Callable, Optional, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor


class StartupError(RuntimeError):
    """A node cannot start (bad parameter, unusable checkpoint); the message says why."""


def run_node(factory: Callable[[], "rclpy.node.Node"], args=None) -> None:
    run_nodes([factory], args)


def run_nodes(factories: Sequence[Callable[[], "rclpy.node.Node"]], args=None,
              connect: Optional[Callable[..., None]] = None) -> None:
    """Create the nodes in order in one process (``connect(*nodes)`` wires them to each other,
    nodes/inspection_composed.py), spin them in one executor until Ctrl-C, then shut each down
    in reverse order. A StartupError ends the process with its message and exit code 2."""
    rclpy.init(args=args)
    nodes = []
    try:
        for factory in factories:
            nodes.append(factory())
        if connect is not None:
            connect(*nodes)
        executor = SingleThreadedExecutor()
        for node in nodes:
            executor.add_node(node)
        executor.spin()
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
        for node in reversed(nodes):
            shutdown = getattr(node, "shutdown", None)
            if shutdown:
                shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
