"""ADGAN (models/adgan): batched search == sequential reference, weights untouched, ranking."""

from __future__ import annotations

import json

import pytest
import torch

from gan_anomaly_ros.models.adgan import Adgan
from gan_anomaly_ros.models.adgan.torch_model import (adaptive_search_batched,
                                                      adaptive_search_sequential)

from model_checks import (assert_centre_square_found, assert_checkpoint_round_trip,
                          assert_training_updates_both_networks,
                          assert_scores_do_not_depend_on_the_batch)
from stripes_data import (  # noqa: F401 (one_thread: an autouse fixture)
    SIZE, SMALL, one_thread, normal_images, with_square, train, snapshot)


@pytest.fixture(scope="module")
def trained() -> Adgan:
    """RGB-D (4-channel) ADGAN after 100 steps on the stripes (a few seconds)."""
    torch.manual_seed(0)
    model = Adgan(4, SIZE, lr=1e-3, **SMALL)
    train(model, normal_images(256, 4, seed=1), steps=100)
    return model


def search(model: Adgan, images: torch.Tensor, batched: bool, max_copies=None, **overrides):
    h = {**model.hparams, **overrides}
    kwargs = dict(n_seed=h["n_seed"], steps=h["k"], lr_z=h["lr_z"], lr_theta=h["lr_theta"],
                  seed=h["search_seed"])
    with torch.no_grad():
        if batched:
            return adaptive_search_batched(model.generator, images, model.latent_shape,
                                           max_copies=max_copies, **kwargs)
        return adaptive_search_sequential(model.generator, images, model.latent_shape, **kwargs)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_construction_and_prediction_shapes(channels):
    torch.manual_seed(0)
    model = Adgan(channels, SIZE, k=2, **SMALL).eval()
    with torch.no_grad():
        prediction = model.predict(normal_images(3, channels, seed=0))
    assert prediction.scores.shape == (3,)
    assert prediction.anomaly_maps.shape == (3, SIZE, SIZE)
    assert prediction.reconstructions.shape == (3, channels, SIZE, SIZE)
    assert torch.isfinite(prediction.scores).all()
    json.dumps(model.describe())  # checkpoints store it as JSON


def test_reference_defaults():
    model = Adgan(4, 64)
    h = model.hparams
    # base_width=32: 4.4 MB per copy, so a CPU pass holds 7 copies, elsewhere all of them.
    assert model.copies_per_pass(torch.device("cpu")) == 7
    assert model.copies_per_pass(torch.device("cuda")) is None
    assert (h["n_seed"], h["k"], h["lr_z"], h["lr_theta"], h["search_seed"]) == \
        (3, 19, 5e-2, 6e-9, 0)
    assert (h["gan_loss"], h["latent_dim"], h["map_sigma"]) == ("gan", 100, 2.0)
    with pytest.raises(ValueError):
        Adgan(4, 64, n_seed=0)


@pytest.mark.parametrize("gan_loss", ["gan", "wgan-gp"])
def test_training_steps_update_both_networks(gan_loss):
    torch.manual_seed(0)
    model = Adgan(4, SIZE, gan_loss=gan_loss, **SMALL)
    assert_training_updates_both_networks(model, normal_images(8, 4, seed=0))


@pytest.mark.parametrize("batched", [True, False])
def test_search_leaves_the_weights_untouched(trained, batched):
    before = snapshot(trained)
    trained.train()  # predict may be called in train mode: BatchNorm stats must not move
    with torch.no_grad():
        # A large lr_theta: the copies move far, the model must not.
        search(trained, with_square(normal_images(2, 4, seed=5)), batched, lr_theta=1e-2)
        if batched:
            trained.predict(normal_images(2, 4, seed=5))
    assert trained.training
    trained.eval()
    after = trained.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in trained.parameters())


@pytest.mark.parametrize("lr_theta", [6e-9, 1e-3])
def test_batched_search_equals_the_sequential_reference(trained, lr_theta):
    images = torch.cat([normal_images(2, 4, seed=9), with_square(normal_images(1, 4, seed=9))])
    batched = search(trained, images, True, lr_theta=lr_theta)
    sequential = search(trained, images, False, lr_theta=lr_theta)
    assert batched.losses.shape == (3, 3)
    assert torch.allclose(batched.losses, sequential.losses, atol=1e-3, rtol=0)
    assert torch.allclose(batched.reconstructions, sequential.reconstructions, atol=1e-3, rtol=0)
    # Splitting the inputs over passes (as on CPU for big models) changes nothing.
    split = search(trained, images, True, max_copies=4, lr_theta=lr_theta)  # 1 input per pass
    assert torch.allclose(split.losses, batched.losses, atol=1e-6, rtol=0)
    # predict's score is the batched search's mean over seeds.
    model = Adgan(4, SIZE, **{**trained.hparams, "lr_theta": lr_theta})
    model.load_state_dict(trained.state_dict())
    with torch.no_grad():
        predicted = model.eval().predict(images).scores
    assert torch.allclose(predicted, sequential.losses.mean(dim=1), atol=1e-3, rtol=0)


def test_generator_adaptation_takes_effect(trained):
    images = normal_images(2, 4, seed=10)
    frozen = search(trained, images, True, lr_theta=0.0)
    adapted = search(trained, images, True, lr_theta=1e-3)
    # Observed: adapting the copies cuts the loss about 5x at lr_theta=1e-3.
    assert (adapted.losses.mean(dim=1) < 0.8 * frozen.losses.mean(dim=1)).all()


def test_search_lowers_the_loss(trained):
    images = normal_images(4, 4, seed=6)
    start = search(trained, images, True, k=0)
    end = search(trained, images, True)
    assert (end.losses < 0.9 * start.losses).all()  # observed: <= 0.68


def test_scores_do_not_depend_on_the_batch(trained):
    assert_scores_do_not_depend_on_the_batch(trained, normal_images(3, 4, seed=7))


def test_hparams_round_trip_rebuilds_an_identical_model(trained, tmp_path):
    assert_checkpoint_round_trip(trained, Adgan, with_square(normal_images(3, 4, seed=8)),
                                 tmp_path)


def test_a_bright_square_scores_higher_than_normal_images(trained):
    normal = normal_images(8, 4, seed=2)
    # Observed: anomalous >= 2.9x the worst normal; 1.5x leaves room for numerical drift.
    assert_centre_square_found(trained, normal, with_square(normal), score_ratio=1.5)
