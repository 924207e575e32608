"""AnoGAN (models/anogan) and the shared latent search (models/latent_search.py)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from gan_anomaly_ros.models.anogan import Anogan
from gan_anomaly_ros.models.latent_search import eval_mode, search_latent

from model_checks import (assert_centre_square_found, assert_checkpoint_round_trip,
                          assert_training_updates_both_networks,
                          assert_scores_do_not_depend_on_the_batch)
from stripes_data import (  # noqa: F401 (one_thread: an autouse fixture)
    SIZE, SMALL, one_thread, normal_images, with_square, train, snapshot)


@pytest.fixture(scope="module")
def trained() -> Anogan:
    """Gray AnoGAN after 100 steps on the stripes (a few seconds)."""
    torch.manual_seed(0)
    model = Anogan(1, SIZE, lr=1e-3, search_steps=20, **SMALL)
    train(model, normal_images(256, 1, seed=1), steps=100)
    return model


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_construction_and_prediction_shapes(channels):
    torch.manual_seed(0)
    model = Anogan(channels, SIZE, search_steps=2, **SMALL).eval()
    batch = normal_images(3, channels, seed=0)
    with torch.no_grad():
        prediction = model.predict(batch)
    assert prediction.scores.shape == (3,)
    assert prediction.anomaly_maps.shape == (3, SIZE, SIZE)
    assert prediction.reconstructions.shape == (3, channels, SIZE, SIZE)
    assert torch.isfinite(prediction.scores).all()
    json.dumps(model.describe())  # checkpoints store it as JSON


def test_defaults_are_resolved_per_gan_loss():
    gan = Anogan(4, 64).hparams
    assert (gan["latent_dim"], gan["base_width"], gan["lam"], gan["search_loss"]) == \
        (100, 32, 0.1, "l1")
    assert (gan["lr"], gan["beta1"], gan["beta2"], gan["n_critic"]) == (2e-4, 0.5, 0.999, 1)
    assert gan["map_sigma"] == 2.0
    wgan = Anogan(4, 64, gan_loss="wgan-gp").hparams
    assert (wgan["lr"], wgan["beta1"], wgan["beta2"], wgan["n_critic"]) == (1e-4, 0.0, 0.9, 5)
    with pytest.raises(ValueError):
        Anogan(1, SIZE, gan_loss="hinge")
    with pytest.raises(ValueError):
        Anogan(1, SIZE, search_loss="l3")


@pytest.mark.parametrize("gan_loss", ["gan", "wgan-gp"])
def test_training_steps_update_both_networks(gan_loss):
    torch.manual_seed(0)
    model = Anogan(3, SIZE, gan_loss=gan_loss, **SMALL)
    if gan_loss == "wgan-gp":  # the gradient penalty is per sample: no BatchNorm in the critic
        assert not any(isinstance(m, nn.BatchNorm2d) for m in model.discriminator.modules())
    assert_training_updates_both_networks(model, normal_images(8, 3, seed=0))


@pytest.mark.parametrize("train_mode", [False, True])
def test_predict_leaves_the_weights_untouched(trained, train_mode):
    before = snapshot(trained)
    trained.train(train_mode)
    with torch.no_grad():
        trained.predict(with_square(normal_images(4, 1, seed=5)))
    assert trained.training == train_mode  # the search's eval mode is undone
    trained.eval()
    after = trained.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm stats included
    assert all(p.grad is None for p in trained.parameters())


def test_latent_search_lowers_its_loss(trained):
    images = normal_images(4, 1, seed=6)
    with torch.no_grad(), eval_mode(trained):
        result = search_latent(trained.generator, lambda x: trained.discriminator(x)[1],
                               images, trained.latent_shape, steps=25, lr=5e-2, lam=0.1, seed=3)
    assert result.history.shape == (26, 4)
    assert (result.history[-1] < 0.95 * result.history[0]).all()  # observed: <= 0.92
    assert torch.equal(result.history[-1], result.scores)
    assert result.z.shape == (4, *trained.latent_shape)
    assert all(p.grad is None for p in trained.parameters())


def test_scores_do_not_depend_on_the_batch(trained):
    assert_scores_do_not_depend_on_the_batch(trained, normal_images(3, 1, seed=7))


def test_hparams_round_trip_rebuilds_an_identical_model(trained, tmp_path):
    assert_checkpoint_round_trip(trained, Anogan, with_square(normal_images(3, 1, seed=8)),
                                 tmp_path)


def test_a_bright_square_scores_higher_than_normal_images(trained):
    normal = normal_images(8, 1, seed=2)
    # Observed: anomalous >= 3.3x the worst normal; 2x leaves room for numerical drift.
    assert_centre_square_found(trained, normal, with_square(normal), score_ratio=2)
