"""How closely an exported model matches the eager one, on random raw crops."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .example_inputs import random_raw_inputs

# Exported graphs run the same float32 arithmetic in another order (other convolution and
# matrix kernels, fused operations), so results differ in the last bits, and standardised
# features and z-scores (combined scores) magnify that. Scores and maps must agree within
# |exported - eager| <= ATOL + RTOL * |eager| (numpy.allclose). Measured on the default model
# (f_anogan, combined memory score, 64 px RGB-D) on synthetic scenes: up to 2.2e-4 on scores
# (z units, scores -1..20) and 1.1e-4 on maps with onnxruntime, 7e-5 with TorchScript; the
# small test models stay below 1e-5. 1e-3 leaves a margin of about 5, and still catches a
# normalisation that is slightly off: colour scaled 0.1 % wrong moves those scores by 7e-2.
RTOL = 1e-3
ATOL = 1e-3


@dataclass
class Comparison:
    max_score_difference: float
    max_map_difference: float
    max_abs_score: float
    within_tolerance: bool


def compare_runtimes(eager, exported, count: int = 4, seed: int = 1) -> Comparison:
    """Score ``count`` random raw crops with two Scorers of one checkpoint (eager first)."""
    raw = random_raw_inputs(eager.preprocessing, count, seed)
    scores_e, maps_e, _ = eager.runtime.run(raw)
    scores_x, maps_x, _ = exported.runtime.run(raw)
    close = (np.allclose(scores_x, scores_e, rtol=RTOL, atol=ATOL) and
             np.allclose(maps_x, maps_e, rtol=RTOL, atol=ATOL))
    return Comparison(max_score_difference=float(np.abs(scores_x - scores_e).max()),
                      max_map_difference=float(np.abs(maps_x - maps_e).max()),
                      max_abs_score=float(np.abs(scores_e).max()), within_tolerance=close)
