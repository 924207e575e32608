"""inspection_composed: preprocess and scorer as two nodes in one process.

The same PreprocessNode and ScorerNode as in separate processes, with the same names,
parameters and topics; only the model input takes a shortcut: preprocess hands each ModelInput
to the scorer's mailbox in memory instead of serialising it through DDS (it still goes out on
model_input when someone else subscribes). Chosen with the launch argument composed:=true;
`gan-anomaly bench --composed` measures both forms (README, "Real time").
"""

from __future__ import annotations

import signal
import sys

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from .preprocess_node import PreprocessNode
from .scorer_node import ScorerNode
from ..ros.node_main import StartupError


def main(args=None):
    rclpy.init(args=args)
    nodes = []
    executor = SingleThreadedExecutor()
    try:
        scorer = ScorerNode(subscribe=False)
        nodes.append(scorer)
        preprocess = PreprocessNode()
        nodes.append(preprocess)
        preprocess.local_consumers.append(scorer.on_input)
        for node in nodes:
            executor.add_node(node)
        executor.spin()
    except StartupError as exc:
        print(f"[ERROR] {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as node_main.run_node: a second Ctrl-C
        for node in reversed(nodes):
            shutdown = getattr(node, "shutdown", None)
            if shutdown:
                shutdown()
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
