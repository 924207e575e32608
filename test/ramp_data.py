"""Tiny gradient images and a short training loop for the f-AnoGAN and Skip-GANomaly tests."""

import torch

from single_thread import one_thread  # noqa: F401 (re-exported fixture)


def ramps(n, channels, size=32, seed=0):
    """Normal data: smooth linear gradients of random orientation and amplitude."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size),
                            indexing="ij")
    theta = torch.rand(n, 1, 1, 1, generator=g) * 6.283
    amplitude = 0.3 + 0.5 * torch.rand(n, channels, 1, 1, generator=g)
    return amplitude * (torch.cos(theta) * xx + torch.sin(theta) * yy)


def paste_square(images):
    out = images.clone()
    out[:, :, 10:18, 12:20] = 1.0
    return out


def train(model, data, epochs, seed=0):
    """A minimal fit(): epoch hook, train mode, shuffled batches of 16."""
    g = torch.Generator().manual_seed(seed)
    optimizers = model.configure_optimizers()
    for epoch in range(epochs):
        model.on_epoch_start(epoch, epochs)
        model.train()
        for index in torch.randperm(len(data), generator=g).split(16):
            logs = model.training_step(data[index], optimizers)
    return logs


def assert_pasted_square_found(model, normal, score_ratio: float):
    """paste_square raises the mean score by score_ratio, orders most pairs, and puts at least
    twice as much residual inside the square as outside."""
    model.eval()
    with torch.no_grad():
        good = model.predict(normal)
        bad = model.predict(paste_square(normal))
    assert bad.scores.mean() > score_ratio * good.scores.mean()
    assert (bad.scores > good.scores).float().mean() >= 0.75
    inside = torch.zeros(normal.shape[-2:], dtype=torch.bool)
    inside[10:18, 12:20] = True
    assert bad.anomaly_maps[:, inside].mean() > 2 * bad.anomaly_maps[:, ~inside].mean()
