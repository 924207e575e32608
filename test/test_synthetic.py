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
    ALL_DEFECT_TYPES,
    DEFECT_TYPES,
    GEOMETRY_DEFECT_TYPES,
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


# --- placement, geometry-only defects, depth artefacts, ground truth ------------------------------

def _height_above_table(f: SyntheticFrame) -> np.ndarray:
    """Height (m) of every back-projected pixel above info['table_plane'] (NaN where invalid)."""
    k = f.intrinsics
    a, b, c, d = f.info["table_plane"]
    z = f.depth_m.astype(np.float64)
    xn = (np.arange(k.width) - k.cx) / k.fx
    yn = (np.arange(k.height) - k.cy) / k.fy
    h = a * xn[None, :] * z + b * yn[:, None] * z + c * z + d
    return np.where(z > 0, h, np.nan)


def _table_depth_mm(f: SyntheticFrame) -> np.ndarray:
    """Depth (mm) of info['table_plane'] along every pixel's ray."""
    k = f.intrinsics
    a, b, c, d = f.info["table_plane"]
    xn = (np.arange(k.width) - k.cx) / k.fx
    yn = (np.arange(k.height) - k.cy) / k.fy
    return -1000.0 * d / (a * xn[None, :] + b * yn[:, None] + c)


def _footprint(f: SyntheticFrame) -> np.ndarray:
    """Pixels more than 5 mm above the table, without isolated ones (depth-noise outliers)."""
    fp = np.nan_to_num(_height_above_table(f)) > 0.005
    p = np.pad(fp, 1).astype(np.int8)
    n = sum(p[1 + dv:1 + dv + fp.shape[0], 1 + du:1 + du + fp.shape[1]]
            for dv in (-1, 0, 1) for du in (-1, 0, 1))
    return fp & (n >= 5)


def _projected_centre(f: SyntheticFrame) -> tuple[float, float]:
    x, y, z = f.info["part_center_camera_m"]
    k = f.intrinsics
    return k.fx * x / z + k.cx, k.fy * y / z + k.cy


def _expected_footprint_centre(f: SyntheticFrame) -> tuple[float, float]:
    """Centre of the footprint's bounding box predicted from the ground truth alone: the image
    extremes of the wall 5 mm up, of the rim (chamfer foot) and of the top face's edge."""
    x, y, zc = f.info["part_center_camera_m"]
    r, hp = f.info["part_radius_m"], f.info["part_height_m"]
    t = zc + hp / 2                                   # table depth on the axis
    cands = [(r, t - 0.005), (r, t - hp + 0.0013), (r - 0.0013, t - hp)]
    k = f.intrinsics

    def mid(c, focal, pp):
        vals = [focal * (c + sg * rr) / zz + pp for rr, zz in cands for sg in (-1, 1)]
        return (min(vals) + max(vals)) / 2

    return mid(x, k.fx, k.cx), mid(y, k.fy, k.cy)


@pytest.fixture(scope="module")
def random_frames():
    return {s: render_scene(s, placement="random") for s in range(6)}


def _clear_of_part(f: SyntheticFrame, mm: float) -> np.ndarray:
    """Pixels farther than PART_R + mm (at the top face's depth) from the part's axis."""
    pu, pv = _projected_centre(f)
    vv, uu = np.mgrid[0:H, 0:W]
    r_px = f.intrinsics.fx * (f.info["part_radius_m"] + mm * 1e-3) / 0.49
    return np.hypot(uu - pu, vv - pv) > r_px


def test_random_placement_moves_and_turns_the_part_in_view(random_frames):
    centres, yaws = [], []
    margin_px = 10                               # >= 10 mm of table around the part's image
    for s, f in random_frames.items():
        fp = _footprint(f)
        v, u = np.nonzero(fp)
        assert v.size > 8000
        assert margin_px <= u.min() and u.max() < W - margin_px, s
        assert margin_px <= v.min() and v.max() < H - margin_px, s
        centres.append(_projected_centre(f))
        yaws.append(f.info["part_yaw_deg"])
        assert 0.0 <= f.info["part_yaw_deg"] < 360.0
        # Only the pose changes: lights and noise are the seed's, so the table well away from
        # both parts (and their shadows) is the same frame (bar 1-level rounding differences
        # where one frame shades the table fully near its part and the other does not).
        g = render_scene(s)
        assert f.info["part_center_mm"] != g.info["part_center_mm"]
        far = _clear_of_part(f, 35) & _clear_of_part(g, 35)
        assert far.sum() > 100_000
        dc = np.abs(f.color[far].astype(np.int16) - g.color[far].astype(np.int16))
        assert dc.max() <= 1 and (dc > 0).mean() < 0.01
        assert np.array_equal(f.depth_mm[far], g.depth_mm[far])
    centres = np.array(centres)
    assert np.ptp(centres[:, 0]) > 100 and np.ptp(centres[:, 1]) > 50     # across the image
    assert np.ptp(yaws) > 90
    assert _same(render_scene(3, placement="random"), random_frames[3])
    with pytest.raises(ValueError):
        render_scene(0, placement="anywhere")


@pytest.mark.parametrize("placement", ["centered", "random"])
def test_ground_truth_pose_and_table_plane(random_frames, placement):
    frames = ([render_scene(s) for s in (0, 1, 2)] if placement == "centered"
              else list(random_frames.values()))
    for f in frames:
        a, b, c, d = f.info["table_plane"]
        assert c < 0 and d > 0 and np.hypot(np.hypot(a, b), c) == pytest.approx(1.0)
        assert f.info["part_height_m"] == pytest.approx(0.020)
        assert f.info["part_radius_m"] == pytest.approx(0.054)
        h = _height_above_table(f)
        # The table: back-projected pixels clear of the part lie on the plane (depth noise ~1 mm).
        table = _clear_of_part(f, 25) & ~np.isnan(h)
        assert table.sum() > 150_000
        assert np.median(np.abs(h[table])) < 0.002
        # The top face is PART_H above the plane, and the centre halfway up.
        top = np.nan_to_num(h) > 0.017
        assert np.median(h[top]) == pytest.approx(0.020, abs=3e-4)
        x, y, z = f.info["part_center_camera_m"]
        assert a * x + b * y + c * z + d == pytest.approx(0.010, abs=1e-6)
        # The centre's projection is the centre of the footprint (> 5 mm above the table) ...
        v, u = np.nonzero(_footprint(f))
        box_u, box_v = (u.min() + u.max()) / 2, (v.min() + v.max()) / 2
        pu, pv = _projected_centre(f)
        if placement == "centered":
            assert abs(pu - box_u) <= 2.0 and abs(pv - box_v) <= 2.0
        else:
            # ... up to perspective: the footprint's near edge is the wall 5 mm up, its far edge
            # the rim, so its centre drifts from the volume centre's image by up to ~1.8 px at
            # the workspace's edge. The ground truth predicts that drift to ~1 px.
            eu, ev = _expected_footprint_centre(f)
            assert abs(box_u - eu) <= 1.5 and abs(box_v - ev) <= 1.5
            assert abs(pu - box_u) <= 2.0 + abs(eu - pu) and abs(pv - box_v) <= 2.0 + abs(ev - pv)


@pytest.mark.parametrize("placement", ["centered", "random"])
def test_geometry_defects_change_depth_only(placement):
    seed = 11
    good = render_scene(seed, placement=placement)
    for name in GEOMETRY_DEFECT_TYPES:
        f = render_scene(seed, name, placement=placement)
        assert f.label == name
        assert np.array_equal(f.color, good.color), name           # bit-identical colour
        m = f.mask > 0
        assert m.sum() >= 300, name
        both = (f.depth_mm > 0) & (good.depth_mm > 0)
        diff = f.depth_mm.astype(np.int32) - good.depth_mm.astype(np.int32)
        assert not diff[~m & both].any(), name                      # only inside the mask
        dm = diff[m & both]
        if name == "missing_chunk":
            # The table shows where the chunk was: ~PART_H farther, at the table's depth.
            assert np.percentile(dm, 75) >= 15
            td = _table_depth_mm(f)
            inside = m & (f.depth_mm > 0)
            assert (np.abs(f.depth_mm[inside] - td[inside]) < 3).mean() > 0.75
            assert (np.abs(good.depth_mm[inside] - td[inside]) < 3).mean() < 0.25
        else:
            sign = 1 if name == "geo_dent" else -1                  # dents farther, bumps nearer
            assert sign * dm.mean() > 0.4, name
            assert 1 <= np.abs(dm).max() <= 6, name                  # mm-scale
    assert not good.mask.any()


def test_all_defect_types_and_seed_blocks():
    assert DEFECT_TYPES == ("dent", "bump", "hole", "scratch", "stain")
    assert ALL_DEFECT_TYPES == DEFECT_TYPES + GEOMETRY_DEFECT_TYPES
    # Existing blocks keep their seeds; new ones are disjoint from everything else.
    assert split_seeds("test", 1, defect="dent")[0] == 2_100_000
    assert split_seeds("test", 1, defect="stain")[0] == 2_500_000
    groups = [split_seeds("train", 50), split_seeds("test", 50)]
    groups += [split_seeds("test", 50, defect=d) for d in ALL_DEFECT_TYPES]
    flat = [s for g in groups for s in g]
    assert len(flat) == len(set(flat))
    with pytest.raises(ValueError) as err:
        render_scene(0, "crack")
    assert "missing_chunk" in str(err.value)


def _dilate(m: np.ndarray, n: int) -> np.ndarray:
    m = m.copy()
    for _ in range(n):
        m[1:-1, 1:-1] |= m[:-2, 1:-1] | m[2:, 1:-1] | m[1:-1, :-2] | m[1:-1, 2:]
    return m


def test_depth_artifacts_off_by_default_and_on_demand():
    seed = 7
    plain = render_scene(seed)
    assert _same(plain, render_scene(seed, placement="centered", depth_artifacts=False))
    art = render_scene(seed, depth_artifacts=True)
    assert _same(art, render_scene(seed, depth_artifacts=True))
    assert np.array_equal(art.color, plain.color) and np.array_equal(art.mask, plain.mask)
    c = plain.color.astype(np.float32)
    luma = c[..., 0] * 0.299 + c[..., 1] * 0.587 + c[..., 2] * 0.114
    valid = plain.depth_mm > 0
    d = plain.depth_mm.astype(np.float32)
    # Depth edges of the plain frame: the 4-neighbourhood spans more than 10 mm.
    lo, hi = d.copy(), d.copy()
    for shift in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        nb = np.roll(np.where(valid, d, np.nan), shift, axis=(0, 1))
        lo, hi = np.fmin(lo, nb), np.fmax(hi, nb)
    edge = valid & (hi - lo > 10)
    near_edge = _dilate(edge | ~valid, 3)
    new_zero = valid & (art.depth_mm == 0)
    # (a) dark surfaces away from edges lose depth with p = 0.5 * (60 - Y) / 60 ...
    dark = valid & (luma < 60) & ~near_edge
    assert dark.sum() >= 100
    expected = (0.5 * np.clip((60 - luma[dark]) / 60, 0, 1)).mean()
    assert expected > 0.08
    assert 0.6 * expected < new_zero[dark].mean() < 1.5 * expected
    # ... bright ones (almost) never, except in the hole blobs along depth edges.
    bright = luma >= 60
    assert new_zero[bright & ~near_edge].mean() < 0.0005
    assert (new_zero & bright & _dilate(edge, 2)).sum() > 100
    # (b) flying pixels: at edges, depths strictly between the two sides (3 mm clear of both);
    # walls seen at a slant give a few such depths without artefacts too.
    def flying(f):
        z = f.depth_mm.astype(np.float32)
        return edge & (f.depth_mm > 0) & (z > lo + 3) & (z < hi - 3)

    n_art, n_plain = flying(art).sum(), flying(plain).sum()
    assert n_art > n_plain + 0.1 * edge.sum(), (n_art, n_plain, edge.sum())
    # Nothing else changes: same noise, so depth differs only at edges and dropouts.
    changed = (art.depth_mm != plain.depth_mm) & (art.depth_mm > 0)
    assert not (changed & ~near_edge).any()


def test_write_dataset_geometry_defects_and_poses(tmp_path):
    summary = write_dataset(tmp_path, n_train=1, n_test_good=1, n_test_per_defect=1,
                            defects=("missing_chunk", "dent"), seed=2, progress=False,
                            placement="random", depth_artifacts=True)
    assert summary["test"] == {"good": 1, "missing_chunk": 1, "dent": 1}
    info = json.loads((tmp_path / "camera_info.json").read_text())
    assert info["placement"] == "random" and info["depth_artifacts"] is True
    poses = json.loads((tmp_path / "ground_truth/poses.json").read_text())
    assert set(poses) == {"train/good/000000", "test/good/000000", "test/missing_chunk/000000",
                          "test/dent/000000"}
    seed = split_seeds("test", 1, seed=2, defect="missing_chunk")[0]
    ref = render_scene(seed, "missing_chunk", placement="random", depth_artifacts=True)
    entry = poses["test/missing_chunk/000000"]
    assert entry["seed"] == seed
    np.testing.assert_allclose(entry["part_center_camera_m"], ref.info["part_center_camera_m"])
    np.testing.assert_allclose(entry["table_plane"], ref.info["table_plane"])
    assert entry["part_yaw_deg"] == pytest.approx(ref.info["part_yaw_deg"])
    with Image.open(tmp_path / "test/missing_chunk/depth/000000.png") as im:
        assert np.array_equal(np.asarray(im), ref.depth_mm)
    mask = np.asarray(Image.open(tmp_path / "ground_truth/missing_chunk/000000_mask.png"))
    assert np.array_equal(mask, ref.mask)
