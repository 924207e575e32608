"""Training runs: per-epoch checkpoints, TensorBoard logs, resume, best epoch, torchrun."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_anomaly_ros.checkpoint import load_checkpoint
from gan_anomaly_ros.cli import main as gan_anomaly

ROOT = Path(__file__).resolve().parents[1]
# GANomaly: f-AnoGAN's (the default's) phase split depends on --epochs, so a resumed run with
# more epochs than the first would not match a straight one.
TINY = ["--model", "ganomaly", "--size", "32", "--batch-size", "4", "--hparam", "base_width=8", "--hparam",
        "latent_dim=16", "--device", "cpu"]


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """Plain RGB MVTec layout: smooth gradients are normal, a bright square is a defect."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    ramp = np.linspace(40, 200, 48)

    def image(defect):
        pixels = np.clip(ramp[None, :, None] * rng.uniform(0.6, 1.2, (1, 1, 3)), 0, 255)
        pixels = np.broadcast_to(pixels, (48, 48, 3)).astype(np.uint8).copy()
        if defect:
            pixels[10:22, 14:26] = 255
        return Image.fromarray(pixels)

    for split, label, count in [("train", "good", 16), ("test", "good", 4), ("test", "square", 4)]:
        folder = root / split / label
        folder.mkdir(parents=True)
        for i in range(count):
            image(label != "good").save(folder / f"{i:03d}.png")
    return root


def weights(path):
    return load_checkpoint(path).model.state_dict()


def test_epoch_checkpoints_logs_and_best_epoch(tiny_dataset, tmp_path):
    out = tmp_path / "model.safetensors"
    assert gan_anomaly(["train", "--data", str(tiny_dataset), "--out", str(out), "--epochs", "2",
                        "--log-dir", str(tmp_path / "logs"), "--val-data", str(tiny_dataset),
                        *TINY]) == 0
    assert (tmp_path / "model.last.safetensors").is_file()
    assert (tmp_path / "model.state.pt").is_file()
    assert list((tmp_path / "logs").glob("events.out.tfevents.*"))
    training = load_checkpoint(out).training
    assert training["best_epoch"] in (0, 1) and training["epochs_planned"] == 2
    # The state file loads without unpickling code.
    state = torch.load(tmp_path / "model.state.pt", weights_only=True)
    assert state["epoch"] == 1


def test_resume_continues_exactly_where_it_stopped(tiny_dataset, tmp_path):
    straight, resumed = tmp_path / "straight.safetensors", tmp_path / "resumed.safetensors"
    base = ["train", "--data", str(tiny_dataset), *TINY]
    assert gan_anomaly([*base, "--out", str(straight), "--epochs", "3"]) == 0
    assert gan_anomaly([*base, "--out", str(resumed), "--epochs", "2"]) == 0
    assert gan_anomaly([*base, "--out", str(resumed), "--epochs", "3", "--resume"]) == 0
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_checkpoint(resumed).training["epochs"] == 3


def test_sparse_calibration_ends_with_the_final_weights_calibration(tiny_dataset, tmp_path):
    """--calibrate-every skips held-out scoring in between but always calibrates the end."""
    every, sparse = tmp_path / "every.safetensors", tmp_path / "sparse.safetensors"
    base = ["train", "--data", str(tiny_dataset), "--epochs", "3", *TINY]
    assert gan_anomaly([*base, "--out", str(every)]) == 0
    assert gan_anomaly([*base, "--out", str(sparse), "--calibrate-every", "5"]) == 0
    a, b = load_checkpoint(every), load_checkpoint(sparse)
    assert b.training["calibrated_epoch"] == 2 == a.training["calibrated_epoch"]
    assert b.calibration.threshold == pytest.approx(a.calibration.threshold, rel=1e-6)
    history = torch.load(tmp_path / "sparse.state.pt", weights_only=True)["history"]
    # Epochs 0 and 1 share epoch 0's calibration; epoch 2 has its own.
    assert history[0]["threshold"] == history[1]["threshold"]


def test_resume_without_state_is_refused(tiny_dataset, tmp_path, capsys):
    code = gan_anomaly(["train", "--data", str(tiny_dataset), "--out",
                        str(tmp_path / "none.safetensors"), "--resume", *TINY])
    assert code == 2 and "no training state" in capsys.readouterr().err


def test_torchrun_two_processes_train_in_lockstep(tmp_path):
    script = Path(__file__).parent / "dds_peers" / "ddp_check.py"
    out = tmp_path / "ddp.safetensors"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), str(out)], capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1",
             "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RANKS_IDENTICAL world=2" in result.stdout, result.stdout + result.stderr
    assert out.is_file() and load_checkpoint(out).training["world_size"] == 2


def test_calibrate_redoes_the_held_out_calibration(tiny_dataset, tmp_path, capsys):
    """`gan-anomaly calibrate` finds the same held-out images as training did: with the same k
    it reproduces the threshold; another k moves it; other data is refused."""
    trained, again = tmp_path / "m.safetensors", tmp_path / "again.safetensors"
    assert gan_anomaly(["train", "--data", str(tiny_dataset), "--out", str(trained),
                        "--epochs", "1", *TINY]) == 0
    assert gan_anomaly(["calibrate", "--model", str(trained), "--data", str(tiny_dataset),
                        "--out", str(again), "--device", "cpu"]) == 0
    a, b = load_checkpoint(trained), load_checkpoint(again)
    assert b.calibration.threshold == pytest.approx(a.calibration.threshold, rel=1e-5)
    assert b.training["recalibrated"] is True
    assert gan_anomaly(["calibrate", "--model", str(again), "--data", str(tiny_dataset),
                        "--k-sigma", "5", "--device", "cpu"]) == 0
    wider = load_checkpoint(again).calibration
    assert wider.k_sigma == 5 and wider.threshold > a.calibration.threshold
    other = tmp_path / "other"
    shutil.copytree(tiny_dataset, other)
    (other / "train" / "good" / "000.png").unlink()
    capsys.readouterr()
    assert gan_anomaly(["calibrate", "--model", str(trained), "--data", str(other),
                        "--device", "cpu"]) == 2
    assert "not the data it was trained on" in capsys.readouterr().err
