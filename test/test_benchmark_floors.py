"""The benchmark's pixel floor (benchmarks/nn_floor.py): raw patches and their nearest normal
patch anywhere, the map every model's pixel AUROC is read against."""

import sys
from pathlib import Path

import numpy as np

from ramp_data import one_thread, paste_square, ramps  # noqa: F401 (one_thread: autouse)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from nn_floor import patch_distance_maps  # noqa: E402


def test_a_pasted_square_is_where_the_patch_floor_map_peaks():
    normal = ramps(40, 3).numpy()
    queries = ramps(4, 3, seed=1)
    maps = patch_distance_maps(paste_square(queries).numpy(), normal)
    assert maps.shape == (4, 32, 32)
    inside = np.zeros((32, 32), bool)
    inside[10:18, 12:20] = True
    for image_map in maps:
        peak = np.unravel_index(image_map.argmax(), image_map.shape)
        assert inside[peak], peak
        assert image_map[inside].mean() > 3 * image_map[~inside].mean()


def test_a_training_image_has_a_zero_map():
    normal = ramps(10, 1).numpy()
    assert np.allclose(patch_distance_maps(normal[:2], normal), 0.0, atol=1e-2)
