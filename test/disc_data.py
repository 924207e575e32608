"""Tiny disc images and a short training loop for the BiGAN and TransGAN tests."""

import numpy as np
import torch

from single_thread import one_thread  # noqa: F401 (re-exported fixture)


def normal_images(n, channels, size, seed):
    """A mid-grey disc, slightly off-centre, on a dark background, with a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    out = np.empty((n, channels, size, size), np.float32)
    for i in range(n):
        cy, cx = 0.5 + rng.uniform(-0.05, 0.05, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < 0.3 ** 2
        for c in range(channels):
            out[i, c] = np.where(disc, 0.1 * c - 0.1, -0.6) + rng.normal(0, 0.03, (size, size))
    return torch.from_numpy(out)


def with_square(images, seed):
    """The same images with a bright (+1) square of a quarter of the side pasted in."""
    rng = np.random.default_rng(seed)
    out = images.clone()
    size = images.shape[-1]
    side = size // 4
    for image in out:
        y, x = rng.integers(size // 8, size - side - size // 8, 2)
        image[:, y:y + side, x:x + side] = 1.0
    return out


def train(model, images, epochs, batch_size=16):
    optimizers = model.configure_optimizers()
    order_rng = torch.Generator().manual_seed(0)
    logs = {}
    for epoch in range(epochs):
        model.on_epoch_start(epoch, epochs)
        model.train()
        order = torch.randperm(len(images), generator=order_rng)
        for start in range(0, len(images) - 1, batch_size):
            logs = model.training_step(images[order[start:start + batch_size]], optimizers)
    model.eval()
    return logs


def assert_square_found(model, normal, anomalous):
    """Pasted squares raise the score (most pairs ordered) and the map points at them: hotter
    inside, and each map's peak mostly lies in the square."""
    model.eval()
    with torch.no_grad():
        scores_normal = model.predict(normal).scores
        prediction = model.predict(anomalous)
    assert prediction.scores.mean() > scores_normal.mean() + 0.01
    assert (prediction.scores > scores_normal).float().mean() >= 0.75
    maps = prediction.anomaly_maps
    square = (anomalous != normal).any(dim=1)
    assert maps[square].mean() > 1.3 * maps[~square].mean()
    peaks = maps.flatten(1).argmax(dim=1)
    assert square.flatten(1)[torch.arange(len(maps)), peaks].float().mean() >= 0.75
