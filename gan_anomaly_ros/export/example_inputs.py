"""Random raw crops of the shape and value ranges a scorer is fed, for tracing an export and
for comparing an exported model with the eager one."""

from __future__ import annotations

import numpy as np

from ..perception.preprocessing import PART_MODES, PreprocessConfig

# Depth of the random crops: a table about half a metre away, a few millimetres of relief.
DEPTH_M = (0.45, 0.50)
INVALID_DEPTH_SHARE = 0.1


def random_raw_inputs(config: PreprocessConfig, count: int, seed: int = 0) -> np.ndarray:
    """count x C x S x S raw crops (colour 0..255, depth metres with some 0 = invalid), or
    the inputs made from the part (height maps, part colour views, voxel grids) in
    [-1, 1]."""
    rng = np.random.default_rng(seed)
    shape = (count,) + config.input_shape
    if config.mode in PART_MODES:
        return rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    raw = rng.uniform(0.0, 255.0, shape).astype(np.float32)
    if config.uses_depth:
        depth = rng.uniform(*DEPTH_M, (count,) + shape[2:])
        depth[rng.random(depth.shape) < INVALID_DEPTH_SHARE] = 0.0
        raw[:, config.colour_channels] = depth
    return raw
