"""AnoGAN (models/anogan) and the shared latent search (models/latent_search.py)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from gan_anomaly_ros.models.anogan import Anogan
from gan_anomaly_ros.models.latent_search import eval_mode, search_latent

SIZE = 32
SMALL = {"base_width": 8, "latent_dim": 16}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny convolutions gain nothing from a second intra-op thread, and on a shared 2-core
    # machine the thread pool's contention makes them 10x+ slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def normal_images(count: int, channels: int, seed: int) -> torch.Tensor:
    """Dark horizontal stripes at a random phase with a ramp and a little noise."""
    g = torch.Generator().manual_seed(seed)
    phase = torch.rand(count, 1, 1, 1, generator=g) * 2 * math.pi
    rows = torch.linspace(0, 2 * math.pi, SIZE).view(1, 1, SIZE, 1)
    ramp = torch.linspace(0, 1, SIZE).view(1, 1, 1, SIZE)
    images = -0.5 + 0.25 * torch.sin(2 * rows + phase) + 0.2 * ramp
    images = images + 0.03 * torch.randn(count, channels, SIZE, SIZE, generator=g)
    return images.clamp(-1, 1)


def with_square(images: torch.Tensor, half: int = 5) -> torch.Tensor:
    """The clear defect: a saturated bright square in the middle."""
    out = images.clone()
    c = SIZE // 2
    out[..., c - half:c + half, c - half:c + half] = 1.0
    return out


def train(model: nn.Module, data: torch.Tensor, steps: int, seed: int = 0) -> None:
    torch.manual_seed(seed)
    optimizers = model.configure_optimizers()
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        model.training_step(data[torch.randint(0, len(data), (16,), generator=order)],
                            optimizers)
    model.zero_grad(set_to_none=True)  # so that tests can tell a gradient made by predict
    model.eval()


def snapshot(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


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
    before = snapshot(model)
    optimizers = model.configure_optimizers()
    model.train()
    for _ in range(2):
        logs = model.training_step(normal_images(8, 3, seed=0), optimizers)
    assert set(logs) == {"loss_d", "loss_g"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in logs.values())
    after = model.state_dict()
    for prefix in ("generator.", "discriminator."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix))


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
    images = normal_images(3, 1, seed=7)
    with torch.no_grad():
        together = trained.predict(images).scores
        alone = torch.cat([trained.predict(images[i:i + 1]).scores for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-5)


def test_hparams_round_trip_rebuilds_an_identical_model(trained, tmp_path):
    from safetensors.torch import load_file, save_file

    description = json.loads(json.dumps(trained.describe()))
    path = tmp_path / "anogan.safetensors"
    save_file({k: v.contiguous() for k, v in trained.state_dict().items()}, str(path))
    rebuilt = Anogan(description["channels"], description["size"], **description["hparams"])
    rebuilt.load_state_dict(load_file(str(path)), strict=True)
    rebuilt.eval()
    assert rebuilt.hparams == trained.hparams
    images = with_square(normal_images(3, 1, seed=8))
    with torch.no_grad():
        assert torch.equal(rebuilt.predict(images).scores, trained.predict(images).scores)


def test_a_bright_square_scores_higher_than_normal_images(trained):
    normal = normal_images(8, 1, seed=2)
    with torch.no_grad():
        normal_scores = trained.predict(normal).scores
        prediction = trained.predict(with_square(normal))
    # Observed: anomalous >= 3.3x the worst normal; 2x leaves room for numerical drift.
    assert prediction.scores.min() > 2 * normal_scores.max()
    # The map points at the square.
    c = SIZE // 2
    inside = prediction.anomaly_maps[:, c - 3:c + 3, c - 3:c + 3].mean(dim=(1, 2))
    assert (inside > 3 * prediction.anomaly_maps[:, :8, :8].mean(dim=(1, 2))).all()
