"""Checkpoint save/load round trip, and refusal of corrupt, foreign and pickled files."""

import json

import numpy as np
import pytest
import torch

from gan_anomaly_ros.calibration import Calibration
from gan_anomaly_ros.checkpoint import (CheckpointError, file_id, load_checkpoint, read_metadata,
                                        save_checkpoint)
from gan_anomaly_ros.models import create_model
from gan_anomaly_ros.perception.preprocessing import PreprocessConfig
from gan_anomaly_ros.scoring import InputMismatchError, Scorer

CONFIG = PreprocessConfig(mode="rgbd", size=32, center_crop=0.5)
CALIBRATION = Calibration(threshold=0.3, scale=0.05, map_threshold=0.2, n_images=8)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("ganomaly", 4, 32, base_width=8, latent_dim=16)
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    checkpoint_id = save_checkpoint(path, model, CONFIG, CALIBRATION, {"epochs": 1})
    return path, model, checkpoint_id


def test_round_trip_restores_everything(saved):
    path, model, checkpoint_id = saved
    loaded = load_checkpoint(path)
    assert loaded.checkpoint_id == checkpoint_id == file_id(path)
    assert len(checkpoint_id) == 16
    assert loaded.preprocessing == CONFIG
    assert loaded.calibration == CALIBRATION
    assert loaded.training == {"epochs": 1}
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    x = torch.randn(2, 4, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model.predict(x).scores, loaded.model.predict(x).scores)


def test_scorer_refuses_wrong_input_shape(saved):
    scorer = Scorer(saved[0], device="cpu")
    with pytest.raises(InputMismatchError, match="does not match"):
        scorer.score(np.zeros((3, 32, 32), np.float32))
    result = scorer.score(np.zeros((4, 32, 32), np.float32))
    assert 0.0 <= result.score_normalized <= 1.0
    assert result.anomaly_map.shape == (32, 32)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_truncated_file_is_refused(saved, tmp_path):
    data = saved[0].read_bytes()
    broken = tmp_path / "truncated.safetensors"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt|unreadable|valid safetensors"):
        load_checkpoint(broken)


def test_garbage_file_is_refused(tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        load_checkpoint(garbage)


def test_pickled_torch_file_is_refused_without_unpickling(tmp_path):
    pickled = tmp_path / "model.pt"
    torch.save({"weights": torch.zeros(3)}, pickled)
    with pytest.raises(CheckpointError, match="pickled"):
        load_checkpoint(pickled)


def test_foreign_safetensors_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(2)}, str(foreign), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not a gan_anomaly_ros checkpoint"):
        load_checkpoint(foreign)


def _rewrite_metadata(source, target, change):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(source), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    change(metadata, tensors)
    save_file(tensors, str(target), metadata=metadata)


def test_unknown_model_is_refused(saved, tmp_path):
    target = tmp_path / "unknown.safetensors"

    def rename(metadata, tensors):
        description = json.loads(metadata["model"])
        description["name"] = "no_such_model"
        metadata["model"] = json.dumps(description)

    _rewrite_metadata(saved[0], target, rename)
    with pytest.raises(CheckpointError, match="no_such_model"):
        load_checkpoint(target)


def test_weights_that_do_not_fit_are_refused(saved, tmp_path):
    target = tmp_path / "misfit.safetensors"

    def drop_a_tensor(metadata, tensors):
        tensors.pop(next(iter(tensors)))

    _rewrite_metadata(saved[0], target, drop_a_tensor)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(target)


def test_nan_weights_are_refused(saved, tmp_path):
    target = tmp_path / "nan.safetensors"

    def poison(metadata, tensors):
        key = next(k for k, v in tensors.items() if v.is_floating_point())
        tensors[key] = torch.full_like(tensors[key], float("nan"))

    _rewrite_metadata(saved[0], target, poison)
    with pytest.raises(CheckpointError, match="NaN"):
        load_checkpoint(target)


def test_metadata_reads_without_weights(saved):
    metadata = read_metadata(saved[0])
    assert metadata["model"]["name"] == "ganomaly"
    assert metadata["preprocessing"]["mode"] == "rgbd"
