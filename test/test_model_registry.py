"""Every registered model goes through a checkpoint and the scorer: chosen by the file alone."""

import numpy as np
import pytest
import torch

from gan_anomaly_ros.calibration import Calibration
from gan_anomaly_ros.checkpoint import load_checkpoint, save_checkpoint
from gan_anomaly_ros.models import MODELS, create_model
from gan_anomaly_ros.preprocessing import PreprocessConfig
from gan_anomaly_ros.scoring import Scorer


@pytest.mark.parametrize("name", sorted(MODELS))
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
