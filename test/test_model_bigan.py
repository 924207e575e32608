"""BiGAN / EGBAD model: construction, both objectives, the joint penalty and feature loss,
checkpoint round trip, and a pasted bright square scoring higher after a short training."""

import json

import numpy as np
import pytest
import torch

from gan_anomaly_ros.models.bigan import BiGAN
from gan_anomaly_ros.models.bigan.loss import joint_gradient_penalty

SMALL = {"base_width": 8, "latent_dim": 16, "feature_dim": 32}


from disc_data import (  # noqa: F401 (one_thread: an autouse fixture)
    one_thread, assert_square_found, normal_images, with_square, train)


def predict(model, images):
    model.eval()
    with torch.no_grad():
        return model.predict(images)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_constructs_and_predicts_shapes(channels):
    torch.manual_seed(0)
    model = BiGAN(channels, 32, **SMALL)
    images = normal_images(3, channels, 32, 0)
    prediction = predict(model, images)
    assert prediction.scores.shape == (3,)
    assert prediction.anomaly_maps.shape == (3, 32, 32)
    assert prediction.reconstructions.shape == (3, channels, 32, 32)
    assert torch.isfinite(prediction.scores).all()
    assert model.name == "bigan"


def test_larger_sizes_construct():
    for size in (64, 128, 256):
        model = BiGAN(4, size, base_width=4, latent_dim=8, feature_dim=16)
        assert model.networks.generator(torch.zeros(1, 8, 1, 1)).shape == (1, 4, size, size)


@pytest.mark.parametrize("gan_loss", ["wgan-gp", "gan"])
def test_training_steps_run(gan_loss):
    torch.manual_seed(0)
    model = BiGAN(3, 32, gan_loss=gan_loss, n_critic=2, **SMALL)
    logs = train(model, normal_images(16, 3, 32, 0), epochs=2, batch_size=8)
    expected = {"loss_d", "loss_ge", "adversarial", "feature", "cycle"}  # cycle_weight 1
    if gan_loss == "wgan-gp":
        expected.add("gradient_penalty")
    assert set(logs) == expected
    assert all(np.isfinite(value) for value in logs.values())


def test_defaults_and_norm_rules():
    assert BiGAN(3, 32, **SMALL).hparams["gan_loss"] == "wgan-gp"
    assert BiGAN(3, 32, **SMALL).hparams["d_norm"] == "layer"
    assert BiGAN(3, 32, gan_loss="gan", **SMALL).hparams["d_norm"] == "batch"
    assert BiGAN(3, 32, **SMALL).hparams["alpha"] == 0.9
    with pytest.raises(ValueError, match="BatchNorm"):
        BiGAN(3, 32, gan_loss="wgan-gp", d_norm="batch", **SMALL)
    with pytest.raises(ValueError, match="gan_loss"):
        BiGAN(3, 32, gan_loss="hinge", **SMALL)
    critic = BiGAN(3, 32, **SMALL).networks.discriminator
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())


def test_joint_gradient_penalty_is_finite_and_trains_the_critic():
    torch.manual_seed(0)
    model = BiGAN(3, 32, **SMALL)
    nets = model.networks
    images = normal_images(4, 3, 32, 0)
    real = (images, nets.encoder(images).detach())
    z = nets.sample_latent(4, images)
    fake = (nets.generator(z).detach(), z)
    penalty = joint_gradient_penalty(nets.discriminator, real, fake, weight=10.0)
    assert torch.isfinite(penalty) and penalty.item() > 0
    penalty.backward()
    grads = [p.grad for p in nets.discriminator.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def generator_encoder_update(feature_weight, cycle_weight=0.0):
    torch.manual_seed(0)
    model = BiGAN(3, 32, feature_weight=feature_weight, cycle_weight=cycle_weight, **SMALL)
    model.train()
    optimizers = model.configure_optimizers()
    torch.manual_seed(1)
    logs = model.generator_encoder_step(normal_images(8, 3, 32, 0), optimizers["generator"])
    return model, logs


def test_feature_loss_is_part_of_the_generator_encoder_step():
    model, logs = generator_encoder_update(feature_weight=5.0)
    assert logs["feature"] > 0
    assert logs["loss_ge"] == pytest.approx(logs["adversarial"] + 5.0 * logs["feature"],
                                            rel=1e-5, abs=1e-7)
    without, logs0 = generator_encoder_update(feature_weight=0.0)
    assert logs0["loss_ge"] == pytest.approx(logs0["adversarial"])
    # Same seeds, same batch: only the feature term differs, and it changes the update.
    encoder = model.networks.encoder.state_dict()
    encoder0 = without.networks.encoder.state_dict()
    assert any(not torch.equal(encoder[k], encoder0[k]) for k in encoder
               if encoder[k].is_floating_point())
    # The critic is not touched by the G/E step.
    assert all(p.grad is None for p in model.networks.discriminator.parameters())


def test_cycle_term_is_part_of_the_generator_encoder_step():
    _, logs = generator_encoder_update(feature_weight=5.0, cycle_weight=2.0)
    assert logs["cycle"] > 0
    assert logs["loss_ge"] == pytest.approx(
        logs["adversarial"] + 5.0 * logs["feature"] + 2.0 * logs["cycle"], rel=1e-5, abs=1e-7)
    _, logs0 = generator_encoder_update(feature_weight=5.0)
    assert "cycle" not in logs0


@pytest.mark.parametrize("gan_loss", ["wgan-gp", "gan"])
def test_hparams_round_trip(gan_loss):
    torch.manual_seed(0)
    model = BiGAN(4, 32, gan_loss=gan_loss, **SMALL)
    images = normal_images(8, 4, 32, 0)
    train(model, images, epochs=1, batch_size=8)
    description = json.loads(json.dumps(model.describe()))
    rebuilt = BiGAN(description["channels"], description["size"], **description["hparams"])
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    assert rebuilt.hparams == model.hparams
    before = {k: v.clone() for k, v in model.state_dict().items()}
    expected = predict(model, images).scores
    assert torch.allclose(predict(rebuilt, images).scores, expected, atol=1e-6)
    # Scoring leaves the weights (and BatchNorm statistics) alone.
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bright_square_scores_higher_after_short_training():
    torch.manual_seed(0)
    model = BiGAN(3, 32, **SMALL)
    train(model, normal_images(48, 3, 32, 0), epochs=4)
    normal = normal_images(8, 3, 32, 1)
    assert_square_found(model, normal, with_square(normal, 2))


def test_cycle_term_makes_reconstructions_follow_the_input():
    """ALICE's cycle term (cycle_weight > 0) is logged and pulls G(E(x)) towards x."""
    images = normal_images(48, 3, 32, 0)
    errors = {}
    for weight in (0.0, 1.0):
        torch.manual_seed(0)
        model = BiGAN(3, 32, cycle_weight=weight, lr=1e-3, **SMALL)
        logs = train(model, images, epochs=8)
        assert ("cycle" in logs) == (weight > 0)
        held_out = normal_images(8, 3, 32, 1)
        errors[weight] = float((predict(model, held_out).reconstructions - held_out).abs().mean())
    assert errors[1.0] < 0.93 * errors[0.0]
