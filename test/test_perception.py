"""Perception core: back-projection, the supporting plane, the part, its box and status, and the
frame -> model input step with part crops (ROS-free)."""

import math

import numpy as np
import pytest

from gan_anomaly_ros.data.synthetic import render_scene
from gan_anomaly_ros.perception.frame_input import part_crop_box, prepare_frame
from gan_anomaly_ros.perception.geometry import (CameraIntrinsics, D435_COLOR_640X480,
                                                 depth_to_points, pixel_rays,
                                                 quaternion_to_rotation, rotation_to_quaternion)
from gan_anomaly_ros.perception.part_finder import (FrameScratch, PartFinderConfig, PlaneHint,
                                                   Status, find_part)
from gan_anomaly_ros.perception.plane import fit_plane_ransac
from gan_anomaly_ros.perception.preprocessing import PreprocessConfig, PreprocessError, preprocess_frame

SMALL = D435_COLOR_640X480.scaled(320, 240)


def test_back_projection_matches_a_hand_computed_pixel():
    intr = CameraIntrinsics(width=4, height=3, fx=2.0, fy=4.0, cx=1.0, cy=1.0)
    depth = np.zeros((3, 4), np.float32)
    depth[2, 3] = 0.5                      # u = 3, v = 2
    points = depth_to_points(depth, intr)
    # x = (3 - 1) * 0.5 / 2 = 0.5, y = (2 - 1) * 0.5 / 4 = 0.125
    np.testing.assert_allclose(points, [[0.5, 0.125, 0.5]], atol=1e-7)
    ray_u, ray_v = pixel_rays(intr)
    assert (ray_u[3] * 0.5, ray_v[2] * 0.5) == pytest.approx((0.5, 0.125))


def test_ransac_finds_a_tilted_plane_among_outliers():
    rng = np.random.default_rng(0)
    normal = np.array([0.05, -0.1, -1.0])
    normal /= np.linalg.norm(normal)
    xy = rng.uniform(-0.3, 0.3, (3000, 2))
    z = (0.6 + 0.05 * xy[:, 0] - 0.1 * xy[:, 1]) + rng.normal(0, 0.001, 3000)
    table = np.c_[xy, z]
    clutter = rng.uniform([-0.3, -0.3, 0.3], [0.3, 0.3, 0.55], (1000, 3))
    plane, inliers = fit_plane_ransac(np.r_[table, clutter], 0.004, seed=1)
    assert plane[3] > 0, "the camera must be on the positive side"
    angle = math.degrees(math.acos(abs(plane[:3] @ normal)))
    assert angle < 1.0
    assert inliers[:3000].mean() > 0.95 and inliers[3000:].mean() < 0.05


def test_rotation_to_quaternion_round_trip():
    quarter_turn_about_z = quaternion_to_rotation(0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5))
    np.testing.assert_allclose(quarter_turn_about_z @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0],
                               atol=1e-12)
    rng = np.random.default_rng(1)
    for _ in range(20):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        rotation = quaternion_to_rotation(*q)
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
        got = np.array(rotation_to_quaternion(rotation))
        assert min(np.abs(got - q).max(), np.abs(got + q).max()) < 1e-9


@pytest.fixture(scope="module")
def scene():
    return render_scene(11, intrinsics=SMALL)


def part_centre_truth(frame):
    """The part's centre at half height, camera frame (metres), from the generator's pose."""
    if "part_center_camera_m" in frame.info:
        return np.array(frame.info["part_center_camera_m"])
    pytest.skip("the synthetic generator does not give the part centre in the camera frame")


def test_the_part_is_found_with_its_centroid_and_box(scene):
    part = find_part(scene.depth_m, scene.intrinsics)
    assert part.status is Status.INSPECTED, part.detail
    error_mm = 1000 * np.linalg.norm(part.centroid - part_centre_truth(scene))
    assert error_mm < 5.0
    # Flange: 108 mm across, 20 mm tall (percentiles and the chamfer take a few mm off).
    assert 0.095 < part.size[0] < 0.112 and 0.095 < part.size[1] < 0.112
    assert 0.017 < part.size[2] < 0.025
    assert part.valid_fraction > 0.9
    rotation = part.rotation
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-9)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    assert rotation[2, 2] < -0.99, "box z (the plane normal) points towards the camera"
    # The footprint holds the part's pixels and nothing far from them.
    x, y, w, h = part.footprint
    assert 60 < w < 90 and 60 < h < 90


def test_the_previous_frames_plane_is_kept_while_it_holds():
    """A stream from one camera: the hinted plane gives the part the fresh RANSAC gives; a
    hint from another set-up (a table 8 cm closer, tilted) is refused and RANSAC takes over."""
    first, second = (render_scene(seed, intrinsics=SMALL, placement="random") for seed in (3, 4))
    hint = PlaneHint.from_observation(find_part(first.depth_m, first.intrinsics))
    assert hint is not None and hint.support > 0.5
    fresh = find_part(second.depth_m, second.intrinsics)
    hinted = find_part(second.depth_m, second.intrinsics, plane_hint=hint)
    assert hinted.status is Status.INSPECTED, hinted.detail
    assert math.degrees(math.acos(min(1.0, abs(hinted.plane[:3] @ fresh.plane[:3])))) < 0.5
    assert abs(hinted.plane[3] - fresh.plane[3]) < 0.002
    assert 1000 * np.linalg.norm(hinted.centroid - fresh.centroid) < 1.0
    assert np.array_equal(hinted.footprint, fresh.footprint) or \
        np.abs(np.subtract(hinted.footprint, fresh.footprint)).max() <= 1
    normal = np.array([0.2, 0.0, -1.0]) / np.linalg.norm([0.2, 0.0, -1.0])
    elsewhere = PlaneHint(np.r_[normal, 0.43], hint.support)
    recovered = find_part(second.depth_m, second.intrinsics, plane_hint=elsewhere)
    assert recovered.status is Status.INSPECTED, recovered.detail
    np.testing.assert_allclose(recovered.plane, fresh.plane, atol=1e-9)
    assert PlaneHint.from_observation(None) is None


def test_a_reused_scratch_finds_what_fresh_arrays_find():
    """The stream's FrameScratch (no full-frame allocations per frame) changes no result, and
    nothing an observation holds is overwritten by the next frame."""
    frames = [render_scene(seed, intrinsics=SMALL, placement="random").depth_m
              for seed in (3, 4)]
    frames.insert(1, np.full_like(frames[0], np.nan))        # a frame without measurements
    scratch = FrameScratch.for_shape(None, frames[0].shape)
    kept = []
    for depth in frames:
        assert FrameScratch.for_shape(scratch, depth.shape) is scratch
        reused = find_part(depth, SMALL, scratch=scratch)
        fresh = find_part(depth, SMALL)
        assert reused.status is fresh.status and reused.footprint == fresh.footprint
        for name in ("plane", "mask", "centroid", "rotation", "size", "points"):
            a, b = getattr(reused, name), getattr(fresh, name)
            assert (a is None and b is None) or np.array_equal(a, b), name
        kept.append((reused, None if reused.points is None else reused.points.copy()))
    first, points = kept[0]
    assert first.inspected and np.array_equal(first.points, points)
    assert FrameScratch.for_shape(scratch, (10, 12)).shape == (10, 12)   # another camera size


def test_an_empty_table_is_no_part(scene):
    depth = scene.depth_m.copy()
    table = find_part(depth, scene.intrinsics)
    # Replace the part's pixels by the table plane under them.
    rows, cols = np.nonzero(table.mask | np.roll(table.mask, 3, axis=1))
    a, b, c, d = table.plane
    ray_u, ray_v = pixel_rays(scene.intrinsics)
    depth[rows, cols] = -d / (a * ray_u[cols] + b * ray_v[rows] + c)
    empty = find_part(depth, scene.intrinsics)
    assert empty.status is Status.NO_PART and "nothing above the plane" in empty.detail
    assert empty.plane is not None and empty.centroid is None


@pytest.mark.parametrize("fill", [0.0, np.nan, np.inf, -1.0, -np.inf, 70.0])
def test_depth_without_measurements_is_invalid_input(scene, fill):
    depth = np.full(scene.depth_m.shape, fill, np.float32)
    observation = find_part(depth, scene.intrinsics)
    assert observation.status is Status.INVALID_INPUT
    assert "valid depth" in observation.detail


def test_holes_in_the_parts_depth_are_invalid_input(scene):
    part = find_part(scene.depth_m, scene.intrinsics)
    depth = scene.depth_m.copy()
    rows, cols = np.nonzero(part.mask)
    holes = np.random.default_rng(0).random(len(rows)) < 0.5
    depth[rows[holes], cols[holes]] = 0.0
    observation = find_part(depth, scene.intrinsics)
    assert observation.status is Status.INVALID_INPUT and "of the part has valid depth" in \
        observation.detail


def test_a_part_cut_by_the_image_border_is_invalid_input(scene):
    shifted = np.roll(scene.depth_m, -scene.depth_m.shape[1] // 2 + 10, axis=1)
    observation = find_part(shifted, scene.intrinsics)
    assert observation.status is Status.INVALID_INPUT and "border" in observation.detail
    allowed = find_part(shifted, scene.intrinsics, PartFinderConfig(reject_border_parts=False))
    assert allowed.status is Status.INSPECTED


def test_the_workspace_box_ignores_what_lies_outside_it(scene):
    part = find_part(scene.depth_m, scene.intrinsics)
    # A box that ends before the part's x: nothing above the plane is left in it.
    config = PartFinderConfig(workspace_max=(part.centroid[0] - 0.08, 10.0, 10.0))
    assert find_part(scene.depth_m, scene.intrinsics, config).status is Status.NO_PART


def test_depth_of_another_size_than_the_camera_is_invalid(scene):
    observation = find_part(scene.depth_m[:100], scene.intrinsics)
    assert observation.status is Status.INVALID_INPUT and "camera_info" in observation.detail


def test_part_crop_is_a_square_around_the_footprint_inside_the_image():
    assert part_crop_box((100, 50, 40, 20), 320, 240, 0.25) == (90, 30, 60, 60)
    assert part_crop_box((0, 0, 40, 20), 320, 240, 0.25) == (0, 0, 60, 60)      # shifted in
    assert part_crop_box((300, 200, 20, 40), 320, 240, 0.0) == (280, 200, 40, 40)   # shifted in
    assert part_crop_box((0, 0, 320, 240), 320, 240, 0.5) == (40, 0, 240, 240)  # capped, centred


def test_prepare_frame_centres_the_part_crop_on_the_part(scene):
    config = PreprocessConfig(mode="rgbd", size=32, crop_mode="part", depth_range_m=0.03)
    frame = prepare_frame(scene.color, scene.depth_m, scene.intrinsics, config)
    assert frame.status is Status.INSPECTED, frame.detail
    assert frame.model_input.shape == (4, 32, 32)
    x, y, w, h = frame.crop
    fx, fy, fw, fh = frame.part.footprint
    assert abs((x + w / 2) - (fx + fw / 2)) <= 1 and abs((y + h / 2) - (fy + fh / 2)) <= 1
    assert w == h == round(max(fw, fh) * 1.3)


def test_prepare_frame_never_scores_a_frame_it_cannot_use(scene):
    part_crop = PreprocessConfig(mode="rgb", size=32, crop_mode="part")
    zero = np.zeros_like(scene.depth_m)
    assert prepare_frame(scene.color, zero, scene.intrinsics, part_crop).status is \
        Status.INVALID_INPUT
    assert prepare_frame(scene.color, None, None, part_crop).status is Status.INVALID_INPUT
    # A fixed-crop RGB-D model without part finding still refuses empty depth.
    fixed = PreprocessConfig(mode="rgbd", size=32, center_crop=0.5, depth_range_m=0.03)
    outcome = prepare_frame(scene.color, zero, scene.intrinsics, fixed, find_part_in_frame=False)
    assert outcome.status is Status.INVALID_INPUT and "crop has valid depth" in outcome.detail
    # Colour-only models without depth are scored as before.
    rgb_only = PreprocessConfig(mode="rgb", size=32, center_crop=0.5)
    assert prepare_frame(scene.color, None, None, rgb_only).status is Status.INSPECTED
    broken = prepare_frame(np.zeros((0, 0, 3), np.uint8), None, None, rgb_only)
    assert broken.status is Status.INVALID_INPUT and "empty" in broken.detail


def test_old_checkpoint_preprocessing_keeps_its_fixed_crop():
    stored = PreprocessConfig(mode="rgb", size=32, center_crop=0.5).to_dict()
    stored.pop("crop_mode")
    stored.pop("part_margin")
    assert PreprocessConfig.from_dict(stored).crop_mode == "fixed"
    with pytest.raises(PreprocessError, match="crop_mode"):
        PreprocessConfig(crop_mode="centre")
    with pytest.raises(PreprocessError, match="part crop needs|needs the part's crop box"):
        preprocess_frame(np.zeros((8, 8, 3), np.uint8), None, PreprocessConfig(crop_mode="part"))
