"""The part's orthographic colour view (perception/part_colour.py, mode "part_colour"): what it
holds, that it keeps neither the lighting nor the part's place on the table, and that colour
defects show where their mask says."""

import numpy as np
import pytest

from gan_anomaly_ros.data.synthetic import render_scene
from gan_anomaly_ros.perception.frame_input import prepare_frame
from gan_anomaly_ros.perception.geometry import D435_COLOR_640X480
from gan_anomaly_ros.perception.part_colour import part_colour_map
from gan_anomaly_ros.perception.part_finder import Status, find_part
from gan_anomaly_ros.perception.part_heights import part_cells, part_map_mask
from gan_anomaly_ros.perception.preprocessing import PreprocessConfig

SMALL = D435_COLOR_640X480.scaled(320, 240)
SIZE = 32


def colour_map(frame, color=None):
    part = find_part(frame.depth_m, frame.intrinsics)
    assert part.inspected, part.detail
    return part_colour_map(part, frame.color if color is None else color, SIZE), part


def test_the_part_is_standardised_and_the_table_is_zero():
    view, part = colour_map(render_scene(11, intrinsics=SMALL))
    assert view.shape == (3, SIZE, SIZE) and view.dtype == np.float32
    assert view.min() >= -1.0 and view.max() <= 1.0
    occupied = np.bincount(part_cells(part, SIZE), minlength=SIZE * SIZE).reshape(SIZE, SIZE) > 0
    assert occupied.mean() > 0.5
    # Each channel's mean over the part is 0 (up to the clipping at 3 spreads), and the
    # part is not flat: its highlights and bolt holes stand out.
    assert np.abs(view[:, occupied].mean(axis=1)).max() < 0.05
    assert view[:, occupied].std() > 0.1
    assert (view[:, ~occupied] == 0).all()          # the corners: no points, the part's mean


def test_brighter_light_gives_the_same_view():
    scene = render_scene(11, intrinsics=SMALL)
    view, _ = colour_map(scene)
    dimmer = (scene.color.astype(np.float64) * 0.7 + 10).astype(np.uint8)
    other, _ = colour_map(scene, dimmer)
    assert np.abs(view - other).max() < 0.02


def test_the_part_fills_the_same_cells_wherever_it_lies():
    """Position and perspective drop out (the yaw stays): the same part at two random places
    on the table covers the same cells of the view, up to the box's symmetries."""
    def outline(seed):
        view, part = colour_map(render_scene(seed, intrinsics=SMALL, placement="random"))
        return np.bincount(part_cells(part, SIZE), minlength=SIZE * SIZE).reshape(SIZE,
                                                                                  SIZE) > 0

    first, second = outline(5), outline(6)
    symmetries = [np.rot90(second, k) for k in range(4)]
    symmetries += [np.fliplr(s) for s in symmetries]
    overlap = max((first & s).sum() / (first | s).sum() for s in symmetries)
    assert overlap > 0.85, overlap


@pytest.mark.parametrize("defect", ["stain", "scratch"])
def test_colour_defects_show_where_the_mask_says(defect):
    good, _ = colour_map(render_scene(21, intrinsics=SMALL))
    frame = render_scene(21, defect, intrinsics=SMALL)
    bad, part = colour_map(frame)
    cells = part_map_mask(part, frame.mask > 127, frame.depth_m, frame.intrinsics, SIZE)
    assert cells.any()
    change = np.abs(bad - good).max(axis=0)
    assert change[cells].max() > 3 * np.median(change[~cells]) + 0.05, defect


def test_prepare_frame_gives_colour_views_and_refuses_frames_without_a_part():
    scene = render_scene(11, intrinsics=SMALL)
    config = PreprocessConfig(mode="part_colour", size=SIZE)
    assert config.finds_part and config.uses_depth and config.channels == 3
    frame = prepare_frame(scene.color, scene.depth_m, scene.intrinsics, config)
    assert frame.status is Status.INSPECTED and frame.model_input.shape == (3, SIZE, SIZE)
    np.testing.assert_array_equal(frame.model_input, colour_map(scene)[0])
    x, y, w, h = frame.crop                  # where the map is drawn back onto the image
    fx, fy, fw, fh = frame.part.footprint
    assert x <= fx and y <= fy and x + w >= fx + fw and y + h >= fy + fh
    assert prepare_frame(scene.color, np.zeros_like(scene.depth_m), scene.intrinsics,
                         config).status is Status.INVALID_INPUT
    assert prepare_frame(scene.color, None, None, config).status is Status.INVALID_INPUT
    with pytest.raises(ValueError, match="no part"):
        part_colour_map(find_part(np.zeros_like(scene.depth_m), scene.intrinsics), scene.color)
