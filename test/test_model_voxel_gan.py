"""Voxel grids of a part's point cloud (perception/voxels.py) and the 3D GANomaly that scores
them (models/voxel_gan): grid values, shapes, training, detection of dents and missing chunks
on toy cylinders, the training -> checkpoint -> Scorer path, and the refused options."""

import numpy as np
import pytest
import torch

from gan_anomaly_ros.metrics import auroc
from gan_anomaly_ros.models import MODELS, create_model
from gan_anomaly_ros.models.catalog import describe_models
from gan_anomaly_ros.models.score_heads import reduce_maps
from gan_anomaly_ros.models.voxel_gan import VoxelGan
from gan_anomaly_ros.perception.preprocessing import PreprocessConfig, PreprocessError
from gan_anomaly_ros.perception.voxels import voxel_centres, voxel_grid

from model_checks import assert_checkpoint_round_trip, assert_scores_do_not_depend_on_the_batch
from single_thread import one_thread  # noqa: F401 (autouse fixture: torch on one thread)

TINY = {"base_width": 4, "latent_dim": 16}
EXTENT, R = 0.32, 32  # 1 cm voxels
VOXEL = EXTENT / R


# -- toy parts ---------------------------------------------------------------------------------

MARGIN = 1.2  # extent = the box's largest side x this


def cylinder_cloud(rng, defect=None, samples=96):
    """A top-down view of a flat-topped cylinder in its own frame (origin at the centre of its
    box, z up): the top disc sampled like jittered camera pixels, with 0.15-voxel noise.
    ``defect``: "dent" (a 2-3 voxel deep depression in the top) or "chunk" (a slice of the
    rim missing)."""
    radius = rng.uniform(0.03, 0.04)
    height = rng.uniform(0.4, 0.5) * 2 * radius
    u = (np.arange(samples) + 0.5) / samples * 2 - 1
    x, y = np.meshgrid(u * radius, u * radius)
    x = x + rng.uniform(-0.5, 0.5, x.shape) * (2 * radius / samples)
    y = y + rng.uniform(-0.5, 0.5, y.shape) * (2 * radius / samples)
    keep = x ** 2 + y ** 2 <= radius ** 2
    x, y = x[keep], y[keep]
    z = np.full(x.shape, height / 2)
    extent = 2 * radius * MARGIN
    voxel = extent / R
    if defect == "dent":
        angle, distance = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.5) * radius
        cx, cy = distance * np.cos(angle), distance * np.sin(angle)
        d2 = ((x - cx) ** 2 + (y - cy) ** 2) / (rng.uniform(0.25, 0.35) * radius) ** 2
        z = z - np.where(d2 < 1, 1 - d2, 0) * rng.uniform(2, 3) * voxel
    elif defect == "chunk":
        angle = rng.uniform(0, 2 * np.pi)
        keep = x * np.cos(angle) + y * np.sin(angle) < rng.uniform(0.55, 0.7) * radius
        x, y, z = x[keep], y[keep], z[keep]
    z = z + rng.normal(0, 0.15 * voxel, z.shape)
    return np.stack([x, y, z], 1), extent


def cylinder_grids(n, seed, defect=None, kind="tsdf"):
    rng = np.random.default_rng(seed)
    grids = [voxel_grid(*cylinder_cloud(rng, defect), resolution=R, kind=kind) for _ in range(n)]
    return np.stack(grids)[:, None]


def plate(z, half=0.048, step=0.004):
    """A horizontal square plate of points at height z (metres): 25 x 25 points over the
    10 x 10 columns 11..20 of the 1 cm grid."""
    u = np.arange(-half, half + 1e-9, step)
    x, y = np.meshgrid(u, u)
    return np.stack([x.ravel(), y.ravel(), np.full(x.size, z)], 1)


# -- voxel_grid ----------------------------------------------------------------------------------

def test_a_flat_plate_gives_a_flat_tsdf_surface():
    height = 0.035 + 0.25 * VOXEL  # a quarter voxel above the centre of voxel 19
    grid = voxel_grid(plate(height), EXTENT, R, "tsdf")
    assert grid.shape == (R, R, R) and grid.dtype == np.float32
    columns = (grid > -1).any(axis=0)  # (y, x) columns holding points
    assert columns.sum() == 100 and columns[11:21, 11:21].all()  # the plate's footprint
    assert (grid[R - 1] == -1).all()  # far above the surface: free space
    profile = grid[:, columns]  # every observed column has the same profile along z
    assert np.allclose(profile, profile[:, :1])
    expected = np.clip((height - voxel_centres(EXTENT, R)) / (2.0 * VOXEL), -1, 1)
    assert np.allclose(profile[:, 0], expected, atol=1e-6)
    # Positive below the surface, negative above, zero crossing at the plate.
    assert profile[19, 0] == pytest.approx(0.125) and profile[20, 0] == pytest.approx(-0.375)
    assert (profile[:19, 0] > 0).all() and (profile[20:, 0] < 0).all()
    assert (grid[:, ~columns] == -1).all()  # no point: free space


def test_occupancy_marks_each_voxel_holding_a_point_once():
    centres = voxel_centres(EXTENT, R)
    points = np.array([[centres[3], centres[5], centres[7]],
                       [centres[3] + 0.4 * VOXEL, centres[5], centres[7]],  # same voxel
                       [centres[30], centres[0], centres[31]]])
    grid = voxel_grid(points, EXTENT, R, "occupancy")
    assert grid.sum() == 2 and set(np.unique(grid)) == {0.0, 1.0}
    # Index order [z, y, x].
    assert grid[7, 5, 3] == 1 and grid[31, 0, 30] == 1
    assert voxel_grid(plate(0.005), EXTENT, R, "occupancy").sum() == 100  # one layer, 10 x 10


def test_points_outside_the_grid_are_dropped():
    half = EXTENT / 2
    outside = np.array([[half, 0, 0], [0, -half - 1e-6, 0], [0, 0, 1.0], [-5, 5, 0]])
    for kind, empty in (("occupancy", 0.0), ("tsdf", -1.0)):
        assert (voxel_grid(outside, EXTENT, R, kind) == empty).all()
    inside = np.array([[-half, -half, -half]])  # the low faces belong to the grid
    assert voxel_grid(np.r_[outside, inside], EXTENT, R, "occupancy")[0, 0, 0] == 1
    assert voxel_grid(np.r_[outside, inside], EXTENT, R, "occupancy").sum() == 1


def test_an_empty_cloud_gives_an_empty_grid():
    assert (voxel_grid(np.zeros((0, 3)), EXTENT, 16, "tsdf") == -1).all()
    assert (voxel_grid([], EXTENT, 16, "occupancy") == 0).all()


def test_a_sub_voxel_dent_changes_the_tsdf_but_not_the_occupancy():
    base = 0.6 * VOXEL  # in voxel 16 ([0, 1) voxel), 0.1 voxel above its centre
    shifted = base - 0.3 * VOXEL  # a 0.3-voxel dent, still in voxel 16
    a, b = voxel_grid(plate(base), EXTENT, R, "tsdf"), voxel_grid(plate(shifted), EXTENT, R, "tsdf")
    assert np.array_equal(voxel_grid(plate(base), EXTENT, R, "occupancy"),
                          voxel_grid(plate(shifted), EXTENT, R, "occupancy"))
    changed = np.abs(a - b) > 1e-6
    assert changed.any()
    # Unclipped voxels move by 0.3 voxel / truncation (2 voxels) = 0.15.
    assert np.allclose((a - b)[changed & (np.abs(a) < 0.8)], 0.15, atol=1e-5)


def test_bad_inputs_are_refused_with_the_reason():
    good = plate(0.0)
    cases = [((good[:, :2], EXTENT), {}, "N x 3"), ((np.zeros((0, 2)), EXTENT), {}, "N x 3"),
             ((np.r_[good, [[np.nan, 0, 0]]], EXTENT), {}, "NaN"),
             ((good, 0.0), {}, "extent"), ((good, -1.0), {}, "extent"),
             ((good, float("inf")), {}, "extent"),
             ((good, EXTENT), {"resolution": 4}, "resolution"),
             ((good, EXTENT), {"resolution": 16.5}, "resolution"),
             ((good, EXTENT), {"kind": "sdf"}, "kind"),
             ((good, EXTENT), {"truncation_voxels": 0}, "truncation"),
             ((good.astype(str), EXTENT), {}, "real numbers")]
    for args, kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            voxel_grid(*args, **kwargs)


def test_a_camera_sized_cloud_voxelises_whole():
    """30 000 points (a part seen at 640 x 480): every point lands in the grid. How fast is
    benchmarks/perception_speed.py's to say, not a test's."""
    points = np.random.default_rng(0).uniform(-0.05, 0.05, (30_000, 3))
    occupied = voxel_grid(points, 0.1, 32, "occupancy")
    cells = np.unique(np.floor((points + 0.05) / (0.1 / 32)).astype(int), axis=0)
    assert occupied.sum() == len(cells)
    tsdf = voxel_grid(points, 0.1, 32, "tsdf")
    assert (tsdf[0] == 1.0).all()  # every column holds points: the bottom lies below them


# -- preprocessing -------------------------------------------------------------------------------

def test_voxel_preprocessing_mode():
    config = PreprocessConfig(mode="voxel", size=32)
    assert config.channels == 1 and config.uses_depth and config.colour_channels == 0
    assert config.voxel_kind == "relative_height" and config.input_shape == (1, 32, 32, 32)
    assert PreprocessConfig.from_dict(config.to_dict()) == config
    occupancy = PreprocessConfig(mode="voxel", size=32, voxel_kind="occupancy")
    assert occupancy.fingerprint() != config.fingerprint()
    # Checkpoints from before relative_height stored their kind: they keep it.
    assert PreprocessConfig.from_dict(dict(config.to_dict(), voxel_kind="tsdf")).voxel_kind \
        == "tsdf"
    with pytest.raises(PreprocessError, match="voxel_kind"):
        PreprocessConfig(mode="voxel", voxel_kind="sdf")
    # Image modes: unchanged dict (old checkpoints have no voxel_kind and still load).
    rgbd = PreprocessConfig(mode="rgbd", size=32)
    assert "voxel_kind" not in rgbd.to_dict() and rgbd.input_shape == (4, 32, 32)
    assert PreprocessConfig.from_dict(rgbd.to_dict()) == rgbd


# -- the model -----------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [32, 64])
def test_shapes(size):
    torch.manual_seed(0)
    model = VoxelGan(1, size, base_width=2, latent_dim=8).eval()
    batch = torch.rand(2, 1, size, size, size) * 2 - 1
    with torch.no_grad():
        prediction = model.predict(batch)
    assert prediction.scores.shape == (2,) and torch.isfinite(prediction.scores).all()
    assert prediction.anomaly_maps.shape == (2, size, size, size)
    assert prediction.reconstructions.shape == batch.shape
    assert model.default_score == "residual" and model.spatial_dims == 3
    with pytest.raises(ValueError, match="voxel grid size"):
        VoxelGan(1, 30)
    with pytest.raises(ValueError, match="voxel grid size"):
        VoxelGan(1, 256)


def test_scores_residual_reductions_and_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = create_model("voxel_gan", 1, 32, score="residual:reduce=top1", **TINY).eval()
    grids = torch.from_numpy(cylinder_grids(3, 0))
    with torch.no_grad():
        prediction = model.predict(grids)
        native = model.infer(grids)
    assert torch.allclose(prediction.scores, reduce_maps(native.anomaly_maps, "top1"))
    assert_scores_do_not_depend_on_the_batch(model, grids)
    model.set_score("native")  # the round trip rebuilds from hparams, with the native score
    assert_checkpoint_round_trip(model, VoxelGan, grids, tmp_path)


def test_memory_scores_and_patch_mode_are_refused():
    model = create_model("voxel_gan", 1, 32, **TINY)
    for spec in ("memory", "memory:network=encoder",
                 "combined(residual + memory:network=encoder)"):
        with pytest.raises(ValueError, match="memory and combined scores"):
            model.set_score(spec)
    with pytest.raises(ValueError, match="memory"):
        create_model("voxel_gan", 1, 32, score="memory", **TINY)
    with pytest.raises(ValueError, match="patch mode"):
        model.predict(torch.zeros(1, 1, 64, 64, 64))
    with pytest.raises(ValueError, match="voxel grids"):
        model.predict(torch.zeros(1, 1, 32, 32))


def test_a_few_steps_lower_the_reconstruction_loss():
    torch.manual_seed(0)
    model = create_model("voxel_gan", 1, 32, **TINY)
    batch = torch.from_numpy(cylinder_grids(8, 1))
    optimizers = model.configure_optimizers()
    model.train()
    logs = [model.training_step(batch, optimizers) for _ in range(15)]
    assert set(logs[0]) == {"loss_g", "adversarial", "contextual", "encoder", "loss_d"}
    # DCGAN's small initial weights: slow for 5 steps, then the L1 falls steadily.
    assert logs[-1]["contextual"] < 0.8 * logs[0]["contextual"]


def test_dents_and_missing_chunks_score_above_normal_cylinders():
    """250 steps of 8 grids (about 20 s on one CPU thread). Measured AUROC 1.0 for the
    default (residual) score on seeds 0-3; the latent distance (native) scored 0.3-0.8."""
    torch.manual_seed(0)
    train = torch.from_numpy(cylinder_grids(64, 100))
    model = create_model("voxel_gan", 1, 32, **TINY)
    model.set_score(model.default_score)
    optimizers = model.configure_optimizers()
    generator = torch.Generator().manual_seed(0)
    steps = 0
    while steps < 250:
        for index in torch.randperm(len(train), generator=generator).split(8)[:250 - steps]:
            model.train()
            model.training_step(train[index], optimizers)
            steps += 1
    good = torch.from_numpy(cylinder_grids(16, 200))
    bad = torch.from_numpy(np.concatenate([cylinder_grids(8, 300, "dent"),
                                           cylinder_grids(8, 400, "chunk")]))
    model.eval()
    with torch.no_grad():
        scores = torch.cat([model.predict(good).scores, model.predict(bad).scores]).numpy()
    labels = np.r_[np.zeros(16), np.ones(16)]
    assert auroc(labels, scores) >= 0.9
    assert auroc(labels[:24], scores[:24]) >= 0.9  # the dents alone


# -- training, checkpoint, scorer ----------------------------------------------------------------

def test_train_on_inputs_checkpoint_and_scorer_agree(tmp_path):
    from gan_anomaly_ros.checkpoint import load_checkpoint, save_checkpoint
    from gan_anomaly_ros.scoring import InputMismatchError, Scorer
    from gan_anomaly_ros.training import TrainConfig, train_on_inputs

    inputs = cylinder_grids(24, 5)
    preprocessing = PreprocessConfig(mode="voxel", size=32)
    config = TrainConfig(model="voxel_gan", epochs=2, batch_size=8, device="cpu", hparams=TINY)
    model, calibration, info = train_on_inputs(inputs, preprocessing, config, progress=False)
    assert model.score_spec.kind == "residual" and np.isfinite(calibration.threshold)
    path = tmp_path / "voxel.safetensors"
    save_checkpoint(path, model, preprocessing, calibration, info)
    assert load_checkpoint(path).preprocessing == preprocessing
    scorer = Scorer(path, device="cpu")
    tests = np.concatenate([cylinder_grids(2, 6), cylinder_grids(2, 7, "chunk")])
    results = scorer.score_batch(tests)
    model.eval()
    with torch.no_grad():
        expected = model.predict(torch.from_numpy(tests)).scores.numpy()
    assert np.allclose([r.score for r in results], expected, rtol=1e-5, atol=1e-6)
    assert results[0].anomaly_map.shape == (32, 32, 32) and results[0].roi is None
    assert results[0].reconstruction.shape == (1, 32, 32, 32)
    assert scorer.score(tests[0]).score == pytest.approx(results[0].score, rel=1e-5)
    with pytest.raises(InputMismatchError, match="does not match"):
        scorer.score_batch(np.zeros((1, 1, 32, 32), np.float32))


def test_training_refuses_what_voxel_grids_cannot_do():
    from gan_anomaly_ros.training import TrainConfig, train_on_inputs

    inputs = np.full((8, 1, 32, 32, 32), -1, np.float32)
    voxel = PreprocessConfig(mode="voxel", size=32)
    cases = [(TrainConfig(model="voxel_gan", augment={"shift": 0.05}, hparams=TINY), voxel,
              inputs, "augment"),
             (TrainConfig(model="voxel_gan", patch_size=16, hparams=TINY), voxel, inputs,
              "patch mode"),
             (TrainConfig(model="voxel_gan", score="memory", hparams=TINY), voxel, inputs,
              "memory"),
             (TrainConfig(model="ganomaly", hparams=TINY), voxel, inputs, "voxel_gan"),
             (TrainConfig(model="voxel_gan", hparams=TINY), PreprocessConfig(mode="gray", size=32),
              inputs, "mode 'gray'")]
    for config, preprocessing, data, message in cases:
        config.device, config.epochs = "cpu", 1
        with pytest.raises(ValueError, match=message):
            train_on_inputs(data, preprocessing, config, progress=False)


def test_the_catalog_lists_voxel_gan():
    lines = describe_models(MODELS)
    assert any(line.startswith("voxel_gan: Voxel GANomaly") for line in lines)
    assert any("lr=0.002" in line and "beta2=0.999" in line for line in lines)
