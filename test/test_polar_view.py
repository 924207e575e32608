"""Polar part maps (perception/polar_view.py): rings become rows, a turn becomes a shift, a
point finds the cell that holds its value, and the setting travels in the preprocessing."""

import numpy as np
import pytest

from gan_anomaly_ros.cli import main as gan_anomaly
from gan_anomaly_ros.data.synthetic import render_scene
from gan_anomaly_ros.perception.frame_input import prepare_frame
from gan_anomaly_ros.perception.geometry import D435_COLOR_640X480
from gan_anomaly_ros.perception.part_heights import (map_cells, part_height_map, part_map_extent,
                                                    part_map_mask)
from gan_anomaly_ros.perception.part_finder import part_frame_points
from gan_anomaly_ros.perception.polar_view import polar_cells, to_polar
from gan_anomaly_ros.perception.preprocessing import PreprocessConfig, PreprocessError

SIZE = 64
SMALL = D435_COLOR_640X480.scaled(320, 240)


def square_coordinates(size=SIZE):
    """x, y of every square map cell's centre, in map sides about the centre."""
    centres = (np.arange(size) + 0.5) / size - 0.5
    return np.meshgrid(centres, centres)


def test_rings_become_rows():
    x, y = square_coordinates()
    rings = np.cos(40 * np.hypot(x, y)).astype(np.float32)
    polar = to_polar(rings)
    assert polar.shape == (SIZE, SIZE)
    inner = polar[2:-2]             # the centre row samples a tiny circle, the last the rim
    assert np.abs(inner - inner.mean(axis=1, keepdims=True)).max() < 0.1


def test_a_turn_becomes_a_shift_along_the_rows():
    x, y = square_coordinates()
    turn = 2 * np.pi * 5 / SIZE                          # five polar columns
    ring = np.exp(-((np.hypot(x, y) - 0.3) / 0.08) ** 2)
    angle = np.arctan2(y, x)

    def pattern(a):
        return np.cos(3 * a) * ring

    polar, turned = to_polar(pattern(angle)), to_polar(pattern(angle - turn))
    assert np.abs(np.roll(polar, 5, axis=1) - turned).max() < 0.05
    assert np.abs(polar - turned).max() > 0.5


def test_a_point_finds_the_cell_that_holds_its_value():
    """polar_cells (points) and to_polar (maps) agree: a square map holding each cell's x
    coordinate, made polar, holds about a point's own x in the point's polar cell."""
    rng = np.random.default_rng(0)
    extent = 0.1
    radius = rng.uniform(0.005, 0.045, 200)
    angle = rng.uniform(-np.pi, np.pi, 200)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    x, _ = square_coordinates()
    polar_x = to_polar(x.astype(np.float32)).ravel() * extent
    cells = polar_cells(points, extent, SIZE)
    # A cell spans 1/64 of the radius (0.8 mm here) and 5.6 degrees (up to 4.4 mm at the rim).
    assert np.abs(polar_x[cells] - points[:, 0]).max() < 0.0035
    assert np.array_equal(map_cells(points, extent, SIZE, "polar"), cells)
    with pytest.raises(ValueError, match="projection"):
        map_cells(points, extent, SIZE, "spherical")


def test_prepare_frame_makes_the_polar_map_and_its_mask():
    scene = render_scene(8, "dent", intrinsics=SMALL)
    config = PreprocessConfig(mode="height", size=SIZE, part_orientation=6,
                              map_projection="polar")
    prepared = prepare_frame(scene.color, scene.depth_m, SMALL, config)
    square = part_height_map(prepared.part, SIZE, config.height_range_m)
    assert np.array_equal(prepared.model_input[0], to_polar(square))
    mask = part_map_mask(prepared.part, scene.mask > 127, scene.depth_m, SMALL, SIZE, "polar")
    assert mask.any()
    # The dent's cells are where its pixels' points fall, binned the polar way.
    local = part_frame_points(prepared.part)[:, :2]
    cells = map_cells(local, part_map_extent(prepared.part.size), SIZE, "polar")
    assert mask.ravel()[cells].any() and not mask.ravel()[cells].all()


def test_the_setting_keeps_old_fingerprints_and_is_only_for_maps():
    old = PreprocessConfig(mode="part_colour", size=32)
    assert "map_projection" not in old.to_dict()
    polar = PreprocessConfig(mode="part_colour", size=32, map_projection="polar")
    assert polar.fingerprint() != old.fingerprint()
    assert PreprocessConfig.from_dict(polar.to_dict()) == polar
    with pytest.raises(PreprocessError, match="map_projection"):
        PreprocessConfig(mode="rgbd", map_projection="polar")
    with pytest.raises(PreprocessError, match="map_projection"):
        PreprocessConfig(mode="height", map_projection="spherical")


def test_train_refuses_a_polar_crop(tmp_path, capsys):
    with pytest.raises(SystemExit, match="map modes"):
        gan_anomaly(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m.safetensors"),
                     "--mode", "rgbd", "--map-projection", "polar"])
