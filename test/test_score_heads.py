"""Score heads: the paper's score, a reduced residual map, a feature memory; patch mode."""

import numpy as np
import pytest
import torch

from gan_anomaly_ros.calibration import Calibration
from gan_anomaly_ros.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from gan_anomaly_ros.models import MODELS, ScoreSpec, create_model
from gan_anomaly_ros.models.feature_memory import FeatureMemory
from gan_anomaly_ros.models.score_heads import reduce_maps
from gan_anomaly_ros.models.tiling import random_patches, stitch, tile, window_starts
from gan_anomaly_ros.perception.preprocessing import PreprocessConfig
from gan_anomaly_ros.scoring import Scorer

# The 2D models (voxel models have their own tests: test_model_voxel_gan.py).
IMAGE_MODELS = sorted(name for name, model in MODELS.items() if model.spatial_dims == 2)

CALIBRATION = Calibration(threshold=1.0, scale=0.1, map_threshold=0.5, n_images=4)


def stripes(count, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    rows = torch.linspace(0, 6.28, size).view(1, 1, size, 1)
    phase = torch.rand(count, 1, 1, 1, generator=g) * 6.28
    images = 0.4 * torch.sin(3 * rows + phase).expand(count, 1, size, size)
    return (images + 0.02 * torch.randn(count, 1, size, size, generator=g)).clamp(-1, 1)


def test_spec_text_parses_back_and_bad_specs_are_refused():
    spec = ScoreSpec.parse("memory:network=encoder,layer=-3,reduce=mean,k=3")
    assert (spec.kind, spec.network, spec.layer, spec.reduce, spec.k) == (
        "memory", "encoder", -3, "mean", 3)
    assert ScoreSpec.parse(spec.text()) == spec
    assert ScoreSpec.parse("native").text() == "native"
    with pytest.raises(ValueError, match="score kind must be one of"):
        ScoreSpec.parse("magic")
    with pytest.raises(ValueError, match="reduce must be one of"):
        ScoreSpec.parse("residual:reduce=median")
    with pytest.raises(ValueError, match="expected key=value"):
        ScoreSpec.parse("memory:depth=3")


def test_reductions():
    maps = torch.arange(200, dtype=torch.float32).view(2, 10, 10)
    assert reduce_maps(maps, "max").tolist() == [99.0, 199.0]
    assert reduce_maps(maps, "mean").tolist() == [49.5, 149.5]
    assert reduce_maps(maps, "top1").tolist() == [99.0, 199.0]          # 1 % of 100 pixels
    assert reduce_maps(maps, "top10").tolist() == [94.5, 194.5]


def test_feature_memory_distances_are_nearest_neighbours():
    memory = FeatureMemory(size=100)
    bank = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    memory.fit(bank)
    query = torch.tensor([[[[0.0, 10.0]], [[0.0, 1.0]]]])  # one 1x2 map: (0,0) and (10,1)
    standardised = (torch.tensor([[0.0, 0.0], [10.0, 1.0]]) - memory.mean) / memory.std
    expected = torch.cdist(standardised, memory.bank).min(dim=1).values
    assert torch.allclose(memory.distances(query).flatten(), expected)
    assert memory.distances(query)[0, 0, 0] == 0  # a stored vector is at distance 0
    with pytest.raises(RuntimeError, match="empty"):
        FeatureMemory().distances(query)


def test_memory_keeps_a_seeded_subset_when_full():
    a, b = FeatureMemory(size=10, seed=1), FeatureMemory(size=10, seed=1)
    vectors = torch.randn(50, 4)
    a.fit(vectors)
    b.fit(vectors)
    assert a.bank.shape == (10, 4) and torch.equal(a.bank, b.bank)


def test_greedy_coreset_covers_normal_vectors_better_than_a_random_subset():
    """Two dense clusters and a sparse one: a random quarter misses much of the sparse one, the
    greedy k-centre quarter keeps every vector close to a kept one."""
    g = torch.Generator().manual_seed(0)
    dense = torch.randn(900, 8, generator=g) * 0.1
    sparse = torch.randn(100, 8, generator=g) * 2.0 + 5.0
    vectors = torch.cat([dense, dense + 3.0, sparse])
    full = FeatureMemory(size=10_000)
    full.fit(vectors)
    greedy = FeatureMemory(size=10_000, coreset=0.1, seed=3)
    greedy.fit(vectors)
    assert greedy.bank.shape == (190, 8)
    again = FeatureMemory(size=10_000, coreset=0.1, seed=3)
    again.fit(vectors)
    assert torch.equal(greedy.bank, again.bank)       # seeded: the same checkpoint every time
    # Every kept vector is one of the (standardised) normal vectors.
    exact = "donot_use_mm_for_euclid_dist"
    assert torch.cdist(greedy.bank, full.bank, compute_mode=exact).min(dim=1).values.max() < 1e-3
    random = full.bank[torch.randperm(len(full.bank), generator=g)[:190]]
    greedy_cover = torch.cdist(full.bank, greedy.bank).min(dim=1).values.max()
    random_cover = torch.cdist(full.bank, random).min(dim=1).values.max()
    assert greedy_cover < 0.7 * random_cover
    # Normal queries stay near the memory; an odd vector stays far.
    queries = torch.cat([vectors[:5], torch.full((1, 8), 20.0)]).view(1, 6, 1, 8)
    distances = greedy.distances(queries.permute(0, 3, 1, 2)).flatten()
    assert distances[5] > 5 * distances[:5].max()
    with pytest.raises(ValueError, match="coreset must be a share"):
        FeatureMemory(coreset=0.0)


def test_coreset_spec_round_trips_and_shrinks_the_memory(tmp_path):
    spec = ScoreSpec.parse("memory:network=encoder,layer=-2,reduce=top1,coreset=0.25")
    assert spec.coreset == 0.25 and ScoreSpec.parse(spec.text()) == spec
    assert "coreset" not in ScoreSpec.parse("memory").text()
    with pytest.raises(ValueError, match="coreset must be a share"):
        ScoreSpec.parse("memory:coreset=1.5")
    torch.manual_seed(0)
    model = create_model("ganomaly", 1, 32, base_width=8)
    model.set_score(spec)
    model.fit_score(stripes(12))
    kept = len(model.score_head.memory.bank)
    assert kept == round(0.25 * 12 * 4 * 4)   # layer -2 of the encoder is 4 x 4 at 32 px
    path = tmp_path / "coreset.safetensors"
    save_checkpoint(path, model, PreprocessConfig(mode="gray", size=32), CALIBRATION)
    loaded = load_checkpoint(path)
    assert loaded.model.score_spec == spec
    assert torch.equal(loaded.model.score_head.memory.bank, model.score_head.memory.bank)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_every_model_has_a_memory_score_that_round_trips(name, tmp_path):
    """Each model's own feature maps feed a memory; the checkpoint stores it and the scorer
    gives the same scores after loading."""
    torch.manual_seed(0)
    small = {"transgan": {"embed_dim": 16, "d_embed_dim": 16, "depth": 1, "d_depth": 1}}
    model = create_model(name, 1, 32, **small.get(name, {"base_width": 8}))
    network = next(iter(model.feature_pyramids()))
    model.set_score(f"memory:network={network},layer=-2,reduce=top10")
    model.fit_score(stripes(12))
    model.eval()
    queries = stripes(3, seed=5)
    queries[2, :, 10:18, 10:18] = 1.0  # a bright square no training image has
    with torch.no_grad():
        prediction = model.predict(queries)
    assert prediction.scores.shape == (3,) and prediction.anomaly_maps.shape == (3, 32, 32)
    assert prediction.scores[2] > prediction.scores[:2].max()
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, PreprocessConfig(mode="gray", size=32), CALIBRATION)
    loaded = load_checkpoint(path)
    assert loaded.model.score_spec == model.score_spec
    with torch.no_grad():
        again = loaded.model.predict(queries)
    assert torch.allclose(again.scores, prediction.scores, atol=1e-5)
    result = Scorer(path, device="cpu").score(queries[2].numpy())
    assert result.score == pytest.approx(float(prediction.scores[2]), rel=1e-5)


def test_a_memory_checkpoint_without_its_memory_is_refused(tmp_path):
    model = create_model("ganomaly", 1, 32, base_width=8)
    model.set_score("memory")  # never fitted
    path = tmp_path / "empty.safetensors"
    save_checkpoint(path, model, PreprocessConfig(mode="gray", size=32), CALIBRATION)
    with pytest.raises(CheckpointError, match="needs a feature memory"):
        load_checkpoint(path)


def test_unknown_network_or_layer_is_refused_with_the_choices():
    model = create_model("ganomaly", 1, 32, base_width=8)
    with pytest.raises(ValueError, match=r"has no network 'critic'.*\['discriminator', 'encoder'\]"):
        model.set_score("memory:network=critic")
    with pytest.raises(ValueError, match="layer -9 is out of range"):
        model.set_score("memory:layer=-9")


def test_windows_cover_the_image_and_stitching_averages():
    assert window_starts(64, 32, 16) == [0, 16, 32]
    assert window_starts(70, 32, 16) == [0, 16, 32, 38]
    with pytest.raises(ValueError, match="larger than the image"):
        window_starts(32, 64, 32)
    images = torch.randn(2, 3, 48, 48)
    tiles, offsets = tile(images, 32, 16)
    assert tiles.shape == (2 * 4, 3, 32, 32)
    assert torch.allclose(stitch(tiles, offsets, 48), images)  # overlaps average to the same
    patches = random_patches(images, 16)
    assert patches.shape == (2, 3, 16, 16)


def test_patch_mode_scores_larger_images_with_maps_at_their_size():
    torch.manual_seed(0)
    model = create_model("ganomaly", 1, 32, base_width=8)
    model.set_score("memory:reduce=max")
    normal = stripes(6, size=64)
    model.fit_score(normal)  # fitted window by window, like predict runs
    model.eval()
    query = stripes(2, size=64, seed=9)
    query[1, :, 40:50, 40:50] = 1.0
    with torch.no_grad():
        prediction = model.predict(query)
    assert prediction.anomaly_maps.shape == (2, 64, 64)
    assert prediction.scores[1] > prediction.scores[0]
    hot = prediction.anomaly_maps[1]
    assert hot[40:50, 40:50].mean() > 2 * hot[:16, :16].mean()


def test_patch_mode_checkpoint_takes_full_size_inputs(tmp_path):
    model = create_model("ganomaly", 1, 32, base_width=8)
    path = tmp_path / "patch.safetensors"
    save_checkpoint(path, model, PreprocessConfig(mode="gray", size=64), CALIBRATION)
    scorer = Scorer(path, device="cpu")
    assert scorer.expected_shape == (1, 64, 64)
    result = scorer.score(np.zeros((1, 64, 64), np.float32))
    assert result.anomaly_map.shape == (64, 64)
    save_checkpoint(path, create_model("ganomaly", 1, 64, base_width=8),
                    PreprocessConfig(mode="gray", size=32), CALIBRATION)
    with pytest.raises(CheckpointError, match="does not match the model"):
        load_checkpoint(path)


COMBINED = ("combined(memory:network=discriminator,layer=-2,reduce=top1 + "
            "memory:network=encoder,layer=-1)")


def test_combined_spec_round_trips_and_refuses_nesting():
    spec = ScoreSpec.parse(COMBINED)
    assert spec.kind == "combined" and [p.layer for p in spec.parts] == [-2, -1]
    assert ScoreSpec.parse(spec.text()) == spec
    assert ScoreSpec.from_any(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="cannot be combined"):
        ScoreSpec(kind="combined", parts=(spec,))
    with pytest.raises(ValueError, match="needs parts"):
        ScoreSpec(kind="combined")


def test_combined_score_is_the_largest_part_in_held_out_sigmas(tmp_path):
    torch.manual_seed(0)
    model = create_model("ganomaly", 1, 32, base_width=8)
    model.set_score(COMBINED)
    with pytest.raises(ValueError, match="held-out normal images"):
        model.fit_score(stripes(12))
    held_out = stripes(10, seed=7)
    model.fit_score(stripes(12), reference=held_out)
    model.eval()
    head = model.score_head
    with torch.no_grad():
        parts = head.part_scores(model, held_out)
        z = (parts - head.centre) / head.spread
        assert torch.allclose(z.median(dim=0).values, torch.zeros(2), atol=1e-5)
        queries = stripes(3, seed=5)
        queries[2, :, 10:18, 10:18] = 1.0
        prediction = model.predict(queries)
        expected = ((head.part_scores(model, queries) - head.centre) / head.spread).amax(dim=1)
    assert torch.allclose(prediction.scores, expected)
    assert prediction.scores[2] > prediction.scores[:2].max()
    assert prediction.anomaly_maps.shape == (3, 32, 32)
    path = tmp_path / "combined.safetensors"
    save_checkpoint(path, model, PreprocessConfig(mode="gray", size=32), CALIBRATION)
    with torch.no_grad():
        again = load_checkpoint(path).model.predict(queries)
    assert torch.allclose(again.scores, prediction.scores, atol=1e-5)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_every_model_default_score_fits_and_finds_the_odd_image(name):
    """The default score of every model (what `train` gives without --score) is a valid spec
    for its networks, fits on normal images and scores an unseen defect above normal ones."""
    torch.manual_seed(0)
    # TransGAN's default reads the critic's third-deepest map: at least 2 critic blocks.
    small = {"transgan": {"embed_dim": 16, "d_embed_dim": 16, "depth": 1, "d_depth": 2}}
    model = create_model(name, 1, 32, **small.get(name, {"base_width": 8}))
    model.set_score(model.default_score)
    model.fit_score(stripes(12), reference=stripes(6, seed=3))
    model.eval()
    queries = stripes(3, seed=5)
    queries[2, :, 10:18, 10:18] = 1.0
    with torch.no_grad():
        prediction = model.predict(queries)
    assert torch.isfinite(prediction.scores).all()
    assert prediction.scores[2] > prediction.scores[:2].max()
