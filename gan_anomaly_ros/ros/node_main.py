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
    nodes/inspection_composed.py), spin them in one executor until Ctrl-C or SIGTERM, then shut
    each down in reverse order. A StartupError ends the process with its message and exit
    code 2."""
    # Ctrl-C stops us through rclpy's own handler (it shuts the context down and the executor
    # returns). Python's KeyboardInterrupt would come on top of it at any line, also inside a
    # callback or the cleanup below: under a flood of messages a node then exited with an
    # error or hung. rclpy.init chains its handler to this one, which does nothing.
    signal.signal(signal.SIGINT, _stop_quietly)
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
    except Exception:
        if rclpy.ok():
            raise
        # The signal shut the context down while a callback was publishing: its error is
        # the shutdown itself, not a fault.
    finally:
        # `ros2 launch` follows a terminal's Ctrl-C with a second SIGINT: nothing to do twice.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for node in reversed(nodes):
            shutdown = getattr(node, "shutdown", None)
            if shutdown:
                shutdown()
            node.destroy_node()
        rclpy.try_shutdown()


def _stop_quietly(_signum, _frame) -> None:
    """Python's half of SIGINT: rclpy's handler, which runs first, does the stopping."""
