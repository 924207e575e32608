"""Every registered model goes through a checkpoint and the scorer: chosen by the file alone."""

import numpy as np
import pytest
import torch

from gan_anomaly_ros.calibration import Calibration
from gan_anomaly_ros.checkpoint import load_checkpoint, save_checkpoint
from gan_anomaly_ros.models import MODELS, create_model
from gan_anomaly_ros.perception.preprocessing import PreprocessConfig
from gan_anomaly_ros.scoring import Scorer

# The 2D models (voxel models have their own tests: test_model_voxel_gan.py).
IMAGE_MODELS = sorted(name for name, model in MODELS.items() if model.spatial_dims == 2)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_checkpoint_round_trip_and_scoring(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, 4, 32)
    model.eval()
    path = tmp_path / f"{name}.safetensors"
    save_checkpoint(path, model, PreprocessConfig(mode="rgbd", size=32),
                    Calibration(threshold=1.0, scale=0.1, map_threshold=0.5, n_images=4))
    loaded = load_checkpoint(path)
    assert type(loaded.model) is type(model) and loaded.model.hparams == model.hparams
    batch = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (2, 4, 32, 32))
                             .astype(np.float32))
    with torch.no_grad():
        expected = model.predict(batch)
        got = loaded.model.predict(batch)
    assert torch.allclose(expected.scores, got.scores, atol=1e-5)
    assert got.anomaly_maps.shape == (2, 32, 32)
    result = Scorer(path, device="cpu").score(batch[0].numpy())
    assert np.isfinite(result.score) and 0.0 <= result.score_normalized <= 1.0


@pytest.mark.parametrize("size", [48, 80, 224])
@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_every_model_takes_sizes_that_are_not_powers_of_two(name, size):
    """32 to 256 px: start * 2**n with start 4 to 7, e.g. 48, 80 or 224 (ImageNet crops)."""
    small = {"transgan": {"embed_dim": 16, "d_embed_dim": 16, "depth": 1, "d_depth": 1,
                          "search_steps": 1},
             "adgan": {"base_width": 4, "k": 1}, "anogan": {"base_width": 4, "search_steps": 1}}
    hparams = small.get(name, {"base_width": 4})
    torch.manual_seed(0)
    model = create_model(name, 1, size, **hparams).eval()
    batch = torch.zeros(2, 1, size, size)
    with torch.no_grad():
        prediction = model.predict(batch)
    assert prediction.scores.shape == (2,) and torch.isfinite(prediction.scores).all()
    assert prediction.anomaly_maps.shape == (2, size, size)
    optimizers = model.configure_optimizers()
    model.train()
    assert model.training_step(batch + 0.1, optimizers)


def test_sizes_that_no_stack_can_build_are_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"image size must be one of \[32, 40, 48"):
        create_model("ganomaly", 3, 100)


def test_a_model_may_default_to_another_score_for_one_kind_of_input():
    """f-AnoGAN's default for relative-height maps is the encoder's local memory (chosen on
    benchmarks/geometry_defects.py), for RGB-D the critic's local memory (the combined
    default's local half); every other mode, and every other model, keeps its image
    default."""
    f_anogan = MODELS["f_anogan"]
    assert f_anogan.default_score_for("height") == "memory:network=encoder,layer=-3,reduce=max"
    assert f_anogan.default_score_for("rgbd") == "memory:network=critic,reduce=top1"
    assert f_anogan.default_score_for("part_colour") == \
        "memory:network=critic,layer=-3,reduce=top1,coreset=0.25"
    assert f_anogan.default_score.startswith("combined(memory:network=critic,reduce=top1 + ")
    for mode in ("rgb", "gray"):
        assert f_anogan.default_score_for(mode) == f_anogan.default_score
    for name, model in MODELS.items():
        if name != "f_anogan":
            assert model.default_score_for("height") == model.default_score
