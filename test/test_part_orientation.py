"""The part's yaw from its own shape (perception/part_orientation.py): the flange's box turns
with its bolt pattern wherever it lies, a block keeps its long side as x, a plain disc keeps the
principal axes, and training stores the choice so that the live nodes make the same maps."""

import math

import numpy as np
import pytest

from gan_anomaly_ros.checkpoint import read_preprocessing
from gan_anomaly_ros.data.synthetic import render_scene
from gan_anomaly_ros.perception.frame_input import prepare_frame
from gan_anomaly_ros.perception.geometry import D435_COLOR_640X480
from gan_anomaly_ros.perception.part_finder import find_part
from gan_anomaly_ros.perception.part_heights import part_height_map
from gan_anomaly_ros.perception.part_orientation import (MIN_STRENGTH, choose_harmonic,
                                                         oriented_by_harmonic)
from gan_anomaly_ros.perception.preprocessing import PreprocessConfig, PreprocessError

from model_fixtures import (height_checkpoint, part_colour_checkpoint,  # noqa: F401 (fixtures)
                            synthetic_dataset)

SMALL = D435_COLOR_640X480.scaled(320, 240)
TABLE_M = 0.6
PART_HEIGHT_M = 0.02


def box_yaw_deg(part) -> float:
    """The angle of the box's x axis in the camera's image plane (from x towards y)."""
    x_axis = part.rotation[:, 0]
    return math.degrees(math.atan2(x_axis[1], x_axis[0]))


def circular_spread_deg(angles_deg, period: float) -> float:
    """Largest distance of the angles (modulo ``period``) from their circular mean."""
    phases = np.exp(2j * np.pi * np.asarray(angles_deg) / period)
    mean = np.angle(phases.mean())
    return float(np.max(np.abs(np.angle(phases * np.exp(-1j * mean)))) * period / (2 * np.pi))


def flat_part_depth(inside, intrinsics=SMALL):
    """Depth (metres) of a table TABLE_M below the camera and a flat-topped part on it whose
    footprint is ``inside(x, y)`` (metres on the table, camera axes)."""
    v, u = np.mgrid[0:intrinsics.height, 0:intrinsics.width].astype(np.float64)
    rays_x = (u - intrinsics.cx) / intrinsics.fx
    rays_y = (v - intrinsics.cy) / intrinsics.fy
    top = TABLE_M - PART_HEIGHT_M
    on_top = inside(rays_x * top, rays_y * top)
    return np.where(on_top, top, TABLE_M).astype(np.float32)


def block(length, width, yaw_deg, centre=(0.02, -0.01)):
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))

    def inside(x, y):
        dx, dy = x - centre[0], y - centre[1]
        return (np.abs(dx * c + dy * s) < length / 2) & (np.abs(dy * c - dx * s) < width / 2)
    return inside


def disc(radius, centre=(0.0, 0.01)):
    return lambda x, y: np.hypot(x - centre[0], y - centre[1]) < radius


def found(depth):
    part = find_part(depth, SMALL)
    assert part.inspected, part.detail
    return part


def test_the_flange_box_turns_with_its_bolt_pattern_wherever_it_lies():
    scenes = [render_scene(seed, intrinsics=SMALL, placement="random") for seed in range(1, 7)]
    parts = [found(scene.depth_m) for scene in scenes]
    k, strength = choose_harmonic(parts)
    assert k == 6 and strength > 2 * MIN_STRENGTH, (k, strength)
    offsets = [box_yaw_deg(oriented_by_harmonic(part, k)) - scene.info["part_yaw_deg"]
               for part, scene in zip(parts, scenes)]
    # The bolt pattern repeats every 60 degrees: the box is the same way up modulo that.
    assert circular_spread_deg(offsets, 60.0) < 3.0, offsets
    # The principal axes of a round part are noise: they do not follow the part.
    axes = [box_yaw_deg(p) - s.info["part_yaw_deg"] for p, s in zip(parts, scenes)]
    assert circular_spread_deg(axes, 60.0) > 10.0, axes


def test_the_height_maps_of_two_placements_agree_once_turned():
    """The bolt holes of two random placements (the table seen through them, in the ring
    where they lie) fall into the same map cells once the boxes are turned; along the
    principal axes they hardly meet (test_part_heights tries the box's symmetries instead)."""
    size = 64
    yy, xx = (np.mgrid[:size, :size] + 0.5) / size - 0.5
    ring = (np.hypot(xx, yy) > 0.2) & (np.hypot(xx, yy) < 0.42)

    def holes(part):
        return (part_height_map(part, size) < -0.9) & ring

    def overlap(a, b):
        return (a & b).sum() / max((a | b).sum(), 1)

    first, second = (found(render_scene(seed, intrinsics=SMALL, placement="random").depth_m)
                     for seed in (5, 6))
    turned = overlap(holes(oriented_by_harmonic(first, 6)), holes(oriented_by_harmonic(second, 6)))
    plain = overlap(holes(first), holes(second))
    assert turned > 0.2 and turned > 4 * plain, (turned, plain)


def test_a_block_keeps_its_long_side_as_x():
    parts = [found(flat_part_depth(block(0.08, 0.04, yaw))) for yaw in (-40.0, 10.0, 65.0)]
    k, _ = choose_harmonic(parts)
    assert k == 2
    for part, yaw in zip(parts, (-40.0, 10.0, 65.0)):
        turned = oriented_by_harmonic(part, k)
        assert abs(math.cos(math.radians(box_yaw_deg(turned) - yaw))) > 0.99
        assert turned.size[0] == pytest.approx(0.08, abs=0.004)
        assert turned.size[1] == pytest.approx(0.04, abs=0.004)
        # The centre is the footprint's, whichever way the box is turned.
        assert np.allclose(turned.centroid, part.centroid, atol=0.002)


def test_a_plain_disc_has_no_pattern_and_keeps_its_principal_axes():
    parts = [found(flat_part_depth(disc(0.05, (x, 0.0)))) for x in (-0.03, 0.0, 0.03)]
    k, strength = choose_harmonic(parts)
    assert k == 0 and strength < MIN_STRENGTH
    assert oriented_by_harmonic(parts[0], k) is parts[0]


def ring_of_holes(yaw_deg, big, small, centre=(0.01, 0.0)):
    """A 100 mm disc with twelve holes on a 35 mm circle, every other one ``small``."""
    def inside(x, y):
        dx, dy = x - centre[0], y - centre[1]
        keep = np.hypot(dx, dy) < 0.05
        for i in range(12):
            angle = math.radians(yaw_deg + 30 * i)
            keep &= np.hypot(dx - 0.035 * math.cos(angle),
                             dy - 0.035 * math.sin(angle)) > (big if i % 2 == 0 else small)
        return keep
    return inside


@pytest.mark.parametrize("small, expected", [(0.004, 6), (0.0045, 12)])
def test_the_pattern_is_taken_at_its_fundamental(small, expected):
    """Twelve holes, every other one smaller: the 12th harmonic is the strongest, but the
    6th is what turns the box the same way up every time (k = 12 would leave it half a pitch
    off on every other part); twelve nearly equal holes are a 12-fold pattern."""
    yaws = (0.0, 17.0, 41.0)
    camera = D435_COLOR_640X480
    parts = [find_part(flat_part_depth(ring_of_holes(yaw, 0.0065 if expected == 6 else 0.006,
                                                     small), camera), camera) for yaw in yaws]
    k, _ = choose_harmonic(parts)
    assert k == expected
    offsets = [box_yaw_deg(oriented_by_harmonic(p, k)) - yaw for p, yaw in zip(parts, yaws)]
    assert circular_spread_deg(offsets, 360.0 / k) < 2.0, offsets


def test_prepare_frame_turns_the_part_as_the_checkpoint_says():
    scene = render_scene(4, intrinsics=SMALL, placement="random")
    turned = prepare_frame(scene.color, scene.depth_m, SMALL,
                           PreprocessConfig(mode="height", size=32, part_orientation=6))
    plain = prepare_frame(scene.color, scene.depth_m, SMALL,
                          PreprocessConfig(mode="height", size=32))
    expected = oriented_by_harmonic(plain.part, 6)
    assert np.allclose(turned.part.rotation, expected.rotation)
    assert np.array_equal(turned.model_input[0], part_height_map(expected, 32))
    assert not np.allclose(plain.part.rotation, expected.rotation, atol=1e-3)


def test_the_setting_keeps_old_fingerprints_and_refuses_nonsense():
    old = PreprocessConfig(mode="height", size=32)
    assert "part_orientation" not in old.to_dict()       # stored before the field existed
    turned = PreprocessConfig(mode="height", size=32, part_orientation=6)
    assert turned.fingerprint() != old.fingerprint()
    assert PreprocessConfig.from_dict(turned.to_dict()) == turned
    for bad in (13, -1, 2.5, True, "6"):
        with pytest.raises(PreprocessError, match="part_orientation"):
            PreprocessConfig(mode="height", part_orientation=bad)


def test_training_chooses_the_pattern_and_stores_it(height_checkpoint,  # noqa: F811
                                                    part_colour_checkpoint):  # noqa: F811
    """`gan-anomaly train --mode height / part_colour` with the defaults (--part-orientation
    auto, --map-projection auto) on the flanges: turned to the bolt pattern; the colour view
    in polar cells (a turned part), the height map square."""
    height = read_preprocessing(height_checkpoint)
    assert height.part_orientation == 6 and height.map_projection == "cartesian"
    colour = read_preprocessing(part_colour_checkpoint)
    assert colour.part_orientation == 6 and colour.map_projection == "polar"
