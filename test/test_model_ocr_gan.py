"""OCR-GAN: frequency decoupling, the two-branch generator, training, score, round trip."""

import json

import pytest
import torch

from gan_anomaly_ros.models.ocr_gan import OcrGan
from gan_anomaly_ros.models.ocr_gan.torch_model import ChannelSelection, frequency_decouple

from model_checks import (assert_checkpoint_round_trip,
                          assert_predicts_one_score_and_map_per_image)
from ramp_data import (  # noqa: F401 (one_thread: an autouse fixture)
    one_thread, assert_pasted_square_found, ramps, paste_square, train)

SMALL = {"base_width": 8}


def test_frequency_decoupling_splits_the_image_exactly():
    images = torch.randn(2, 3, 32, 32)
    low, high = frequency_decouple(images)
    assert torch.allclose(low + high, images, atol=1e-6)
    # A smooth ramp is low frequency; a checkerboard is high frequency.
    ramp = torch.linspace(-1, 1, 32).view(1, 1, 1, 32).expand(1, 1, 32, 32)
    assert frequency_decouple(ramp)[1][..., 4:-4, 4:-4].abs().max() < 0.01
    checker = (torch.arange(32).view(32, 1) + torch.arange(32).view(1, 32)) % 2 * 2.0 - 1
    low, high = frequency_decouple(checker.view(1, 1, 32, 32))
    assert high.abs().mean() > 5 * low.abs().mean()


def test_channel_selection_weights_sum_to_one_per_channel():
    select = ChannelSelection(8)
    a, b = torch.ones(2, 8, 4, 4), torch.ones(2, 8, 4, 4)
    low, high = select(a, b)
    assert torch.allclose(low + high, torch.ones_like(low), atol=1e-6)
    assert any(p.requires_grad for p in select.parameters())  # trained, unlike the authors' code


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_shapes(channels):
    torch.manual_seed(0)
    model = OcrGan(channels, 32, **SMALL)
    assert model.name == "ocr_gan"
    assert_predicts_one_score_and_map_per_image(model, ramps(3, channels))


def test_training_updates_both_branches_and_reduces_reconstruction_loss():
    torch.manual_seed(0)
    model = OcrGan(3, 32, lr=1e-3, **SMALL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizers = model.configure_optimizers()
    batch = ramps(16, 3)
    model.train()
    first = model.training_step(batch, optimizers)
    for _ in range(25):
        last = model.training_step(batch, optimizers)
    assert set(first) == {"loss_g", "adversarial", "contextual", "latent", "loss_d"}
    assert last["contextual"] < 0.5 * first["contextual"]
    after = model.state_dict()
    for prefix in ("generator.low.", "generator.high.", "generator.select.", "discriminator."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix))


def test_wgan_gp_option_trains_a_batchnorm_free_critic_with_a_penalty():
    torch.manual_seed(0)
    model = OcrGan(3, 32, gan_loss="wgan-gp", **SMALL)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.discriminator.modules())
    optimizers = model.configure_optimizers()
    model.train()
    logs = [model.training_step(ramps(16, 3), optimizers) for _ in range(3)]
    assert "gradient_penalty" in logs[0] and all(v == v for v in logs[-1].values())
    assert OcrGan(3, 32, **model.hparams).hparams["gan_loss"] == "wgan-gp"
    with pytest.raises(ValueError, match="gan_loss"):
        OcrGan(3, 32, gan_loss="hinge", **SMALL)


def test_score_is_the_authors_and_map_is_the_residual():
    torch.manual_seed(0)
    model = OcrGan(1, 32, score_lambda=1.0, map_sigma=0.0, **SMALL).eval()
    batch = ramps(2, 1)
    with torch.no_grad():
        prediction = model.predict(batch)
    residual = batch - prediction.reconstructions
    assert torch.allclose(prediction.scores, (residual ** 2).flatten(1).mean(1), atol=1e-6)
    assert torch.allclose(prediction.anomaly_maps, residual.abs()[:, 0], atol=1e-6)


def test_hparams_and_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    model = OcrGan(4, 32, noise_std=0.05, **SMALL)
    train(model, ramps(32, 4), epochs=1)
    assert json.loads(json.dumps(model.hparams))["noise_std"] == 0.05
    model.eval()
    assert_checkpoint_round_trip(model, OcrGan, paste_square(ramps(4, 4, seed=1)), tmp_path)


def test_rejects_bad_hparams():
    with pytest.raises(ValueError, match="score_lambda"):
        OcrGan(3, 32, score_lambda=2.0, **SMALL)
    with pytest.raises(ValueError, match="image size must be one of"):
        OcrGan(3, 100, **SMALL)


def test_pasted_square_scores_higher_and_is_localised():
    torch.manual_seed(0)
    model = OcrGan(3, 32, lr=1e-3, noise_std=0.1, **SMALL)
    train(model, ramps(64, 3), epochs=15)
    assert_pasted_square_found(model, ramps(8, 3, seed=1), score_ratio=1.1)
