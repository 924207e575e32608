"""Tests of the synthetic RGB-D scene generator and the pinhole geometry helpers."""

import json

import numpy as np
import pytest
from PIL import Image

from gan_anomaly_ros.perception.geometry import (
    D435_COLOR_640X480,
    CameraIntrinsics,
    depth_to_points,
    intrinsics_for_image,
)
from gan_anomaly_ros.data.synthetic import (
    DEFECT_TYPES,
    SyntheticFrame,
    crop_region,
    render_scene,
    split_seeds,
    write_dataset,
)

H, W = D435_COLOR_640X480.height, D435_COLOR_640X480.width


@pytest.fixture(scope="module")
def frames():
    """seed 7: the good frame and every defect type, rendered once for the module."""
    out = {"good": render_scene(7)}
    for name in DEFECT_TYPES:
        out[name] = render_scene(7, name)
    return out


def _same(a: SyntheticFrame, b: SyntheticFrame) -> bool:
    return (np.array_equal(a.color, b.color) and np.array_equal(a.depth_mm, b.depth_mm)
            and np.array_equal(a.mask, b.mask))


# --- render_scene --------------------------------------------------------------------------------

@pytest.mark.parametrize("defect", [None, "hole", "scratch"])
def test_render_is_deterministic(defect):
    assert _same(render_scene(123, defect), render_scene(123, defect))


def test_different_seeds_differ():
    a, b = render_scene(1), render_scene(2)
    assert not np.array_equal(a.color, b.color)
    assert not np.array_equal(a.depth_mm, b.depth_mm)
    # ... and not just by sensor noise: the part moves or turns.
    assert a.info["part_center_mm"] != b.info["part_center_mm"]
    # A defect of the same type lands somewhere else for another seed.
    assert not np.array_equal(render_scene(1, "dent").mask, render_scene(2, "dent").mask)


def test_shapes_dtypes_and_ranges(frames):
    for label, f in frames.items():
        assert f.label == label
        assert f.intrinsics == D435_COLOR_640X480
        assert f.color.shape == (H, W, 3) and f.color.dtype == np.uint8
        assert f.depth_mm.shape == (H, W) and f.depth_mm.dtype == np.uint16
        assert f.mask.shape == (H, W) and f.mask.dtype == np.uint8
        assert set(np.unique(f.mask)) <= {0, 255}
        valid = f.depth_mm > 0
        assert valid.mean() > 0.98                      # a few invalid pixels, not many
        assert (~valid).sum() > 0                       # ... but some, at depth edges
        d = f.depth_mm[valid]
        assert 470 <= d.min() and d.max() <= 540        # table ~515 mm, part top ~495 mm
        assert 20 < f.color.mean() < 235                # neither black nor blown out
    assert np.allclose(frames["good"].depth_m, frames["good"].depth_mm * 0.001)


def test_good_mask_empty_defect_masks_inside_crop(frames):
    assert not frames["good"].mask.any()
    x, y, w, h = crop_region(W, H, 0.6)
    for name in DEFECT_TYPES:
        m = frames[name].mask > 0
        assert m.sum() >= 300, name                     # visible after the 64x64 downscale
        v, u = np.nonzero(m)
        assert x <= u.min() and u.max() < x + w, name
        assert y <= v.min() and v.max() < y + h, name


def test_whole_part_inside_crop(frames):
    """The model crops the centre; the part (everything nearer than the table) must be in it."""
    x, y, w, h = crop_region(W, H, 0.6)
    d = frames["good"].depth_mm.astype(np.int32)
    v, u = np.nonzero((d > 0) & (d < 505))
    assert v.size > 5000
    assert x <= u.min() and u.max() < x + w and y <= v.min() and v.max() < y + h


@pytest.mark.parametrize("defect,sign,min_mm,peak_mm", [("dent", +1, 0.4, 1.0),
                                                         ("bump", -1, 0.4, 1.0),
                                                         ("hole", +1, 1.5, 5.0)])
def test_defect_changes_depth(frames, defect, sign, min_mm, peak_mm):
    good, bad = frames["good"], frames[defect]
    m = (bad.mask > 0) & (good.depth_mm > 0) & (bad.depth_mm > 0)
    diff = bad.depth_mm[m].astype(np.float64) - good.depth_mm[m].astype(np.float64)
    # Dents and holes are farther from the camera, bumps nearer (1 mm depth noise averages out).
    assert sign * diff.mean() > min_mm
    assert np.percentile(sign * diff, 90) > peak_mm
    # Outside the mask the depth is the same frame (same pose, same noise), bar dropouts.
    out = (bad.mask == 0) & (good.depth_mm > 0) & (bad.depth_mm > 0)
    assert np.array_equal(bad.depth_mm[out], good.depth_mm[out])
    # Colour changes inside the mask, and (almost) only there.
    dc = np.abs(bad.color.astype(np.int16) - good.color.astype(np.int16)).max(axis=-1)
    assert dc[bad.mask > 0].mean() > 8
    assert (dc[bad.mask == 0] > 12).sum() <= 10


def test_stain_and_scratch_change_colour_not_depth(frames):
    good, stain = frames["good"], frames["stain"]
    assert np.array_equal(stain.depth_mm, good.depth_mm)        # albedo only
    changed = np.any(stain.color != good.color, axis=-1)
    assert changed[stain.mask > 0].mean() > 0.9
    assert not changed[stain.mask == 0].any()
    scratch = frames["scratch"]
    dc = np.abs(scratch.color.astype(np.int16) - good.color.astype(np.int16)).max(axis=-1)
    assert dc[scratch.mask > 0].mean() > 10


def test_unknown_defect_and_bad_seed_refused():
    with pytest.raises(ValueError) as err:
        render_scene(0, "crack")
    for name in DEFECT_TYPES:
        assert name in str(err.value)
    with pytest.raises(ValueError):
        render_scene(-1)
    with pytest.raises(TypeError):
        render_scene(1.5)
    assert render_scene(3, "good").label == "good"


def test_other_intrinsics():
    intr = intrinsics_for_image(320, 240)
    f = render_scene(5, "hole", intrinsics=intr)
    assert f.color.shape == (240, 320, 3) and f.depth_mm.shape == (240, 320)
    assert f.mask.any()
    x, y, w, h = crop_region(320, 240)
    v, u = np.nonzero(f.mask)
    assert x <= u.min() and u.max() < x + w and y <= v.min() and v.max() < y + h


# --- write_dataset -------------------------------------------------------------------------------

def test_split_seeds_disjoint():
    groups = [split_seeds("train", 50), split_seeds("test", 50)]
    groups += [split_seeds("test", 50, defect=d) for d in DEFECT_TYPES]
    flat = [s for g in groups for s in g]
    assert len(flat) == len(set(flat))
    assert split_seeds("train", 3, seed=1)[0] != split_seeds("train", 3, seed=0)[0]
    with pytest.raises(ValueError):
        split_seeds("val", 3)


def test_write_dataset_layout(tmp_path):
    summary = write_dataset(tmp_path, n_train=2, n_test_good=1, n_test_per_defect=1,
                            defects=("dent", "stain"), seed=3, progress=False)
    assert summary["train"] == {"good": 2}
    assert summary["test"] == {"good": 1, "dent": 1, "stain": 1}
    assert summary["n_frames"] == 5

    assert sorted(p.name for p in (tmp_path / "train/good/rgb").iterdir()) == ["000000.png",
                                                                             "000001.png"]
    assert sorted(p.name for p in (tmp_path / "train/good/depth").iterdir()) == ["000000.png",
                                                                               "000001.png"]
    for label in ("good", "dent", "stain"):
        assert (tmp_path / "test" / label / "rgb/000000.png").is_file()
        assert (tmp_path / "test" / label / "depth/000000.png").is_file()
    assert not (tmp_path / "ground_truth/good").exists()
    for label in ("dent", "stain"):
        mask = np.asarray(Image.open(tmp_path / "ground_truth" / label / "000000_mask.png"))
        assert mask.dtype == np.uint8 and mask.shape == (H, W) and mask.max() == 255
    assert not (tmp_path / "test/hole").exists()

    # The files hold exactly what render_scene gives for the split's seeds.
    seed = split_seeds("train", 2, seed=3)[1]
    ref = render_scene(seed)
    with Image.open(tmp_path / "train/good/depth/000001.png") as im:
        depth = np.asarray(im)
    assert depth.dtype == np.uint16 and depth.shape == (H, W)
    assert np.array_equal(depth, ref.depth_mm)
    with Image.open(tmp_path / "train/good/rgb/000001.png") as im:
        assert im.mode == "RGB"
        assert np.array_equal(np.asarray(im), ref.color)

    info = json.loads((tmp_path / "camera_info.json").read_text())
    assert CameraIntrinsics.from_dict(info) == D435_COLOR_640X480


def test_write_dataset_rejects_unknown_defect(tmp_path):
    with pytest.raises(ValueError):
        write_dataset(tmp_path, n_train=1, n_test_good=0, n_test_per_defect=1,
                      defects=("crack",), progress=False)


# --- geometry -------------------------------------------------------------------------------------

def test_intrinsics_basics():
    k = D435_COLOR_640X480
    assert k.K.shape == (3, 3)
    assert k.K[0, 0] == k.fx and k.K[1, 1] == k.fy and k.K[0, 2] == k.cx and k.K[1, 2] == k.cy
    assert CameraIntrinsics.from_dict(k.to_dict()) == k
    assert hash(CameraIntrinsics.from_dict(json.loads(json.dumps(k.to_dict())))) == hash(k)
    half = k.scaled(320, 240)
    assert half.fx == pytest.approx(k.fx / 2) and half.cx == pytest.approx((k.cx + 0.5) / 2 - 0.5)
    guess = intrinsics_for_image(640, 480)
    assert guess.fx == guess.fy == pytest.approx(0.85 * 640)
    assert (guess.cx, guess.cy) == (319.5, 239.5)
    with pytest.raises(ValueError):
        CameraIntrinsics(0, 480, 600, 600, 320, 240)


def test_depth_to_points_known_pixel():
    k = D435_COLOR_640X480
    depth = np.zeros((H, W), np.float32)
    depth[100, 200] = 0.5
    depth[300, 500] = 0.8
    depth[10, 10] = np.nan                      # invalid values are skipped
    pts = depth_to_points(depth, k)
    assert pts.shape == (2, 3) and pts.dtype == np.float32
    np.testing.assert_allclose(pts[0], [(200 - k.cx) * 0.5 / k.fx, (100 - k.cy) * 0.5 / k.fy, 0.5],
                               rtol=1e-6)
    # Re-projecting gives the pixel back.
    x, y, z = pts[1]
    assert k.fx * x / z + k.cx == pytest.approx(500, abs=1e-3)
    assert k.fy * y / z + k.cy == pytest.approx(300, abs=1e-3)
    mask = np.zeros((H, W), bool)
    mask[300, 500] = True
    np.testing.assert_allclose(depth_to_points(depth, k, mask=mask), pts[1:], rtol=1e-6)
    with pytest.raises(ValueError):
        depth_to_points(depth[:10], k)


def test_synthetic_frame_backprojects_to_the_table():
    f = render_scene(4)
    pts = depth_to_points(f.depth_m, f.intrinsics)
    # The table corners are ~0.5 m away, and the part's top is ~20 mm nearer than the table.
    assert 0.49 < float(np.median(pts[:, 2])) < 0.54
    assert float(np.percentile(pts[:, 2], 1)) < float(np.median(pts[:, 2])) - 0.015
