"""TransGAN model: token/patch scaling, both objectives, AnoGAN latent search that leaves the
weights alone, checkpoint round trip, and a pasted bright square scoring higher."""

import json

import numpy as np
import pytest
import torch

from gan_anomaly_ros.models.transgan import TransGAN

SMALL = {"latent_dim": 16, "embed_dim": 32, "depth": 1, "d_embed_dim": 32, "d_depth": 1,
         "heads": 2, "mlp_ratio": 2.0, "search_steps": 5}


from disc_data import (  # noqa: F401 (one_thread: an autouse fixture)
    one_thread, assert_square_found, normal_images, with_square, train)


def predict(model, images):
    model.eval()
    with torch.no_grad():
        prediction = model.predict(images)
        assert not torch.is_grad_enabled()  # the search's enable_grad() is closed again
    return prediction


@pytest.mark.parametrize("channels,size", [(1, 32), (3, 32), (4, 32), (3, 64)])
def test_constructs_and_predicts_shapes(channels, size):
    torch.manual_seed(0)
    model = TransGAN(channels, size, **SMALL)
    images = normal_images(2, channels, size, 0)
    prediction = predict(model, images)
    assert prediction.scores.shape == (2,)
    assert prediction.anomaly_maps.shape == (2, size, size)
    assert prediction.reconstructions.shape == (2, channels, size, size)
    assert torch.isfinite(prediction.scores).all()
    assert model.name == "transgan"


@pytest.mark.parametrize("size,start,patch,stages", [(32, 4, 4, 4), (64, 8, 8, 4),
                                                     (128, 8, 16, 5), (256, 8, 32, 6)])
def test_tokens_and_patches_scale_with_size(size, start, patch, stages):
    model = TransGAN(4, size)
    assert (model.hparams["start_size"], model.hparams["patch_size"]) == (start, patch)
    assert [stage.side for stage in model.generator.stages][-1] == size
    assert len(model.generator.stages) == stages
    # The critic always sees 8 x 8 patch tokens plus the cls token.
    assert model.discriminator.position.shape[1] == 65
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))
                   for m in model.modules())


def test_generator_and_critic_at_64():
    torch.manual_seed(0)
    model = TransGAN(3, 64)  # the defaults
    images = model.generator(torch.randn(2, model.hparams["latent_dim"]))
    assert images.shape == (2, 3, 64, 64) and images.abs().max() <= 1
    logits, features = model.discriminator(images)
    assert logits.shape == (2,) and features.shape == (2, 65, model.hparams["d_embed_dim"])


@pytest.mark.parametrize("gan_loss", ["wgan-gp", "gan"])
def test_training_steps_run(gan_loss):
    torch.manual_seed(0)
    model = TransGAN(3, 32, gan_loss=gan_loss, n_critic=2, **SMALL)
    logs = train(model, normal_images(16, 3, 32, 0), epochs=1, batch_size=8)
    expected = {"loss_d", "loss_g"} | ({"gradient_penalty"} if gan_loss == "wgan-gp" else set())
    assert set(logs) == expected
    assert all(np.isfinite(value) for value in logs.values())
    if gan_loss == "wgan-gp":
        assert logs["gradient_penalty"] > 0


def test_predict_leaves_weights_alone_and_is_deterministic():
    torch.manual_seed(0)
    model = TransGAN(3, 32, **SMALL)
    images = normal_images(4, 3, 32, 0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = predict(model, images)
    second = predict(model, images)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())
    assert torch.equal(first.scores, second.scores)  # search_seed fixes the start
    assert not first.scores.requires_grad and not first.reconstructions.requires_grad


def test_latent_search_lowers_the_mapping_loss():
    torch.manual_seed(0)
    images = normal_images(4, 3, 32, 0)
    model = TransGAN(3, 32, **dict(SMALL, search_steps=0))
    start = predict(model, images).scores
    searched = TransGAN(3, 32, **dict(SMALL, search_steps=15))
    searched.load_state_dict(model.state_dict())
    assert (predict(searched, images).scores < start).all()


@pytest.mark.parametrize("gan_loss", ["wgan-gp", "gan"])
def test_hparams_round_trip(gan_loss):
    torch.manual_seed(0)
    model = TransGAN(4, 32, gan_loss=gan_loss, **SMALL)
    images = normal_images(8, 4, 32, 0)
    train(model, images, epochs=1, batch_size=8)
    description = json.loads(json.dumps(model.describe()))
    rebuilt = TransGAN(description["channels"], description["size"], **description["hparams"])
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    assert rebuilt.hparams == model.hparams
    assert torch.allclose(predict(rebuilt, images).scores, predict(model, images).scores,
                          atol=1e-6)


def test_bright_square_scores_higher_after_short_training():
    torch.manual_seed(0)
    model = TransGAN(3, 32, **dict(SMALL, search_steps=10))
    train(model, normal_images(32, 3, 32, 0), epochs=3)
    normal = normal_images(8, 3, 32, 1)
    assert_square_found(model, normal, with_square(normal, 2))
