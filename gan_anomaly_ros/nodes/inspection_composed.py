"""inspection_composed: preprocess and scorer as two nodes in one process.

The same PreprocessNode and ScorerNode as in separate processes, with the same names,
parameters and topics; only the model input takes a shortcut: preprocess hands each ModelInput
to the scorer's mailbox in memory instead of serialising it through DDS (it still goes out on
model_input when someone else subscribes). Chosen with the launch argument composed:=true;
`gan-anomaly bench --layout both` measures both forms (README, "Real time").
"""

from __future__ import annotations

from functools import partial

from .preprocess_node import PreprocessNode
from .scorer_node import ScorerNode
from ..ros.node_main import run_nodes


def hand_inputs_to_scorer(scorer: ScorerNode, preprocess: PreprocessNode) -> None:
    preprocess.local_consumers.append(scorer.on_input)


def main(args=None):
    # The scorer first: its model is loaded and warmed up before frames start to arrive.
    run_nodes([partial(ScorerNode, subscribe=False), PreprocessNode], args,
              connect=hand_inputs_to_scorer)


if __name__ == "__main__":
    main()
