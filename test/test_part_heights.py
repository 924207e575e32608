"""The relative-height map (perception/part_heights.py): what it holds, that it does not move
with the part, that geometry-only defects show in it, its masks, and its way back onto the
image; and the voxel GAN's relative_height grid made of it, with its way back onto the part's
points."""

import numpy as np
import pytest

from gan_anomaly_ros.anomaly_map import points_to_crop_map
from gan_anomaly_ros.data.synthetic import render_scene
from gan_anomaly_ros.perception.frame_input import prepare_frame
from gan_anomaly_ros.perception.geometry import D435_COLOR_640X480
from gan_anomaly_ros.perception.part_finder import Status, find_part
from gan_anomaly_ros.perception.part_heights import (height_cells, part_cells, part_height_map,
                                                    part_map_mask, part_map_extent)
from gan_anomaly_ros.perception.part_voxels import part_voxel_grid
from gan_anomaly_ros.perception.preprocessing import PreprocessConfig, PreprocessError
from gan_anomaly_ros.perception.voxels import height_field_grid, voxel_grid

SMALL = D435_COLOR_640X480.scaled(320, 240)
SIZE = 32
RANGE_M = 0.008


def height_map(frame, size=SIZE):
    part = find_part(frame.depth_m, frame.intrinsics)
    assert part.inspected, part.detail
    return part_height_map(part, size, RANGE_M), part


def test_the_top_face_reads_zero_and_the_table_minus_one():
    heights, part = height_map(render_scene(11, intrinsics=SMALL))
    assert heights.shape == (SIZE, SIZE) and heights.dtype == np.float32
    assert heights.min() >= -1.0 and heights.max() <= 1.0
    # The part (tens of mm tall) fills the middle: its face reads 0 up to the sensor's noise.
    occupied = np.bincount(part_cells(part, SIZE), minlength=SIZE * SIZE).reshape(SIZE, SIZE)
    assert (occupied > 0).mean() > 0.5
    assert np.median(np.abs(heights[occupied > 0])) * RANGE_M * 1000 < 1.0
    # The corners of the square lie beyond the part: the table, saturated.
    assert heights[0, 0] == heights[-1, -1] == -1.0


def test_the_map_does_not_move_with_the_part():
    """The same part anywhere on the table at any yaw: the map is in the part's own frame,
    so two random placements give nearly the same map (up to the box's symmetries) while a
    colour crop would not."""
    first, _ = height_map(render_scene(5, intrinsics=SMALL, placement="random"))
    second, _ = height_map(render_scene(6, intrinsics=SMALL, placement="random"))
    symmetries = [np.rot90(second, k) for k in range(4)]
    symmetries += [np.fliplr(s) for s in symmetries]
    differences = [np.abs(first - s).mean() for s in symmetries]
    table = np.abs(first - (-1.0)).mean()       # against a map of bare table
    assert min(differences) < 0.25 * table, (differences, table)


@pytest.mark.parametrize("defect, sign", [("geo_dent", -1), ("geo_bump", 1),
                                          ("missing_chunk", -1)])
def test_geometry_only_defects_show_where_the_mask_says(defect, sign):
    """Colour is identical to the good part's; the height map changes inside the defect's
    cells (projected from the image mask), in the defect's direction, and little elsewhere."""
    good, _ = height_map(render_scene(21, intrinsics=SMALL))
    frame = render_scene(21, defect, intrinsics=SMALL)
    assert np.array_equal(frame.color, render_scene(21, intrinsics=SMALL).color)
    bad, part = height_map(frame)
    cells = part_map_mask(part, frame.mask > 127, frame.depth_m, frame.intrinsics, SIZE)
    assert cells.any()
    change = sign * (bad - good)
    assert change[cells].max() * RANGE_M * 1000 > 1.0, f"{defect}: under 1 mm in its cells"
    # Elsewhere: sub-millimetre (a missing chunk at the rim also shrinks the part's box, which
    # moves the cells a little).
    assert np.median(np.abs(bad - good)[~cells]) * RANGE_M * 1000 < 0.6


def test_the_mask_covers_the_cells_it_was_drawn_over():
    """The part's own pixels land in the part's cells; a chunk's mask (pixels where the
    camera now sees the table) still lands where the chunk was, not on a thin rim."""
    scene = render_scene(11, intrinsics=SMALL)
    heights, part = height_map(scene)
    own = part_map_mask(part, part.mask, scene.depth_m, scene.intrinsics, SIZE)
    occupied = np.bincount(part_cells(part, SIZE), minlength=SIZE * SIZE).reshape(SIZE, SIZE)
    assert np.array_equal(own, occupied > 0)
    nothing = np.zeros(part.mask.shape, bool)
    assert not part_map_mask(part, nothing, scene.depth_m, scene.intrinsics, SIZE).any()
    chunk = render_scene(11, "missing_chunk", intrinsics=SMALL)
    _, broken = height_map(chunk)
    cells = part_map_mask(broken, chunk.mask > 127, chunk.depth_m, chunk.intrinsics, SIZE)
    # Not a line of rim cells: an area several cells deep.
    rows, cols = np.nonzero(cells)
    assert cells.sum() >= 12 and min(np.ptp(rows), np.ptp(cols)) >= 3, cells.sum()


def test_cells_are_orthographic_and_clipped_to_the_square():
    extent = 0.1
    xy = np.array([[-0.05, -0.05], [0.0, 0.0], [0.0499, 0.0], [0.2, -0.2]])
    assert height_cells(xy, extent, 10).tolist() == [0, 55, 59, 9]
    assert part_map_extent((0.08, 0.05, 0.03)) == pytest.approx(0.088)


def test_prepare_frame_gives_height_maps_and_refuses_frames_without_a_part():
    scene = render_scene(11, intrinsics=SMALL)
    config = PreprocessConfig(mode="height", size=SIZE)
    assert config.finds_part and config.uses_depth and config.colour_channels == 0
    frame = prepare_frame(scene.color, scene.depth_m, scene.intrinsics, config)
    assert frame.status is Status.INSPECTED and frame.model_input.shape == (1, SIZE, SIZE)
    np.testing.assert_array_equal(frame.model_input[0], height_map(scene)[0])
    # The crop is where the map is drawn back onto the image: around the part.
    x, y, w, h = frame.crop
    fx, fy, fw, fh = frame.part.footprint
    assert x <= fx and y <= fy and x + w >= fx + fw and y + h >= fy + fh
    for depth in (np.zeros_like(scene.depth_m), np.full_like(scene.depth_m, np.nan)):
        assert prepare_frame(scene.color, depth, scene.intrinsics, config).status is \
            Status.INVALID_INPUT
    assert prepare_frame(scene.color, None, None, config).status is Status.INVALID_INPUT


def test_the_height_range_is_stored_only_for_height_models():
    height = PreprocessConfig(mode="height", size=SIZE, height_range_m=0.005)
    assert PreprocessConfig.from_dict(height.to_dict()) == height
    assert height.to_dict()["height_range_m"] == 0.005
    # Other modes keep the dict, and so the fingerprint, their checkpoints were saved with.
    assert "height_range_m" not in PreprocessConfig(mode="rgbd").to_dict()
    with pytest.raises(PreprocessError, match="height_range_m"):
        PreprocessConfig(mode="height", height_range_m=0.0)


def test_points_put_a_map_back_on_the_image_crop():
    crop = (100, 50, 40, 40)                      # 40 px square, 4 x 4 map: 10 px per cell
    u = np.array([105, 135, 125, 126])
    v = np.array([55, 85, 55, 55])
    values = np.array([1.0, 3.0, 2.0, 5.0])
    mapped = points_to_crop_map(values, u, v, crop, 4)
    assert mapped[0, 0] == 1.0 and mapped[3, 3] == 3.0
    assert mapped[0, 2] == 5.0                    # the largest value of the cell
    # Cells without a point take a neighbour's value; beyond those, the lowest value.
    assert mapped[1, 1] == 5.0 and mapped[0, 1] == 5.0
    far = points_to_crop_map(np.array([2.0, 7.0]), np.array([101, 139]), np.array([51, 51]),
                             (100, 50, 40, 40), 8)
    assert far[7, 0] == 2.0 and far[0, 7] == 7.0
    assert points_to_crop_map(np.zeros(0), u[:0], v[:0], crop, 4).shape == (4, 4)


# -- the voxel GAN's default grid: the truncated distance of the height map ----------------------

def test_a_height_field_grid_holds_the_surface_of_each_column():
    flat = np.zeros((16, 16))
    grid = height_field_grid(flat)
    assert grid.shape == (16, 16, 16) and grid.dtype == np.float32
    # Levels below the surface (z < 0) positive, above negative, the same in every column.
    column = grid[:, 3, 3]
    assert (column[:8] > 0).all() and (column[8:] < 0).all()
    assert np.array_equal(grid, np.broadcast_to(column[:, None, None], grid.shape))
    dented = flat.copy()
    dented[5, 6] = -0.25                                  # 2 mm deep at +-8 mm: 2 levels
    changed = np.argwhere(height_field_grid(dented) != grid)
    assert {(y, x) for _, y, x in changed} == {(5, 6)}
    with pytest.raises(ValueError, match="square"):
        height_field_grid(np.zeros((16, 8)))


def test_relative_height_voxels_are_the_height_map_as_a_grid():
    scene = render_scene(11, intrinsics=SMALL)
    heights, part = height_map(scene, 32)
    np.testing.assert_array_equal(part_voxel_grid(part, 32, "relative_height", RANGE_M),
                                  height_field_grid(heights))
    config = PreprocessConfig(mode="voxel", size=32, voxel_kind="relative_height")
    frame = prepare_frame(scene.color, scene.depth_m, scene.intrinsics, config)
    assert frame.inspected and frame.model_input.shape == (1, 32, 32, 32)
    assert config.to_dict()["height_range_m"] == RANGE_M
    cube = PreprocessConfig(mode="voxel", size=32, voxel_kind="tsdf")
    assert "height_range_m" not in cube.to_dict()
    with pytest.raises(ValueError, match="height map"):
        voxel_grid(part.points - part.centroid, 0.1, 32, "relative_height")


@pytest.mark.requires_ros
def test_a_relative_grid_map_lands_on_the_points_of_its_column():
    """The scorer's anomaly cloud for relative_height grids: a point takes its column's
    value, whatever its height (the levels are heights about the top face, not box z)."""
    from std_msgs.msg import Header

    from gan_anomaly_ros.ros.part_messages import (part_cloud, voxel_anomaly_cloud,
                                                   voxel_grid_message)

    scene = render_scene(11, intrinsics=SMALL)
    part = find_part(scene.depth_m, scene.intrinsics)
    grid = part_voxel_grid(part, 32, "relative_height", RANGE_M)
    header = Header(frame_id="camera_color_optical_frame")
    voxels = voxel_grid_message(header, part, grid, "relative_height", RANGE_M)
    assert voxels.voxel_height == pytest.approx(2 * RANGE_M / 32)
    assert voxels.voxel_size == pytest.approx(part_map_extent(part.size) / 32)
    cells = part_cells(part, 32)
    hot = np.bincount(cells).argmax()
    unit_map = np.zeros((32, 32, 32), np.float32)
    unit_map[7, hot // 32, hot % 32] = 1.0
    _, cloud = voxel_anomaly_cloud(header, part_cloud(header, part, scene.color, 10 ** 6),
                                   voxels, unit_map)
    assert len(cloud) == len(cells)
    agree = (cloud["anomaly"] == 1.0) == (cells == hot)
    assert agree.mean() > 0.99 and (cloud["anomaly"] == 1.0).sum() >= 0.9 * (cells == hot).sum()
