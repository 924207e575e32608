"""The `gan-anomaly` command line: train, eval, and clear errors on bad data."""

import json

import numpy as np
from PIL import Image

from gan_anomaly_ros.checkpoint import load_checkpoint
from gan_anomaly_ros.cli import main as gan_anomaly


def test_train_writes_a_calibrated_checkpoint(small_checkpoint):
    checkpoint = load_checkpoint(small_checkpoint)
    assert checkpoint.preprocessing.mode == "rgbd" and checkpoint.preprocessing.size == 64
    assert checkpoint.training["n_holdout"] >= 2
    assert checkpoint.calibration.threshold > 0
    assert checkpoint.calibration.normalize(checkpoint.calibration.threshold) == 0.5


def test_eval_reports_metrics(small_checkpoint, synthetic_dataset, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    assert gan_anomaly(["eval", "--model", str(small_checkpoint), "--data",
                        str(synthetic_dataset), "--json", str(out), "--device", "cpu",
                        "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["n_images"] == 6 + 2 * 5
    assert 0.0 <= metrics["image_auroc"] <= 1.0 and 0.0 <= metrics["pixel_auroc"] <= 1.0
    assert set(metrics["per_type"]) == {"good", "dent", "bump", "hole", "scratch", "stain"}
    assert sum(metrics["confusion"].values()) == 16
    for picture in ("roc.png", "gallery.png"):
        with Image.open(tmp_path / "eval" / picture) as image:
            assert image.width > 300 and image.height > 300
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == metrics
    # Every column of the gallery has its title above it (dark text in the 18 px header).
    with Image.open(tmp_path / "eval" / "gallery.png") as image:
        header = np.asarray(image.convert("L"))[:18]
    for column in range(4):
        assert (header[:, 170 + 128 * column:170 + 128 * (column + 1) - 20] < 128).any(), column


def test_train_refuses_folder_without_train_good(tmp_path, capsys):
    (tmp_path / "test" / "good").mkdir(parents=True)
    code = gan_anomaly(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m.safetensors")])
    assert code == 2
    assert "no train/good" in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()


def test_train_names_an_unreadable_image(tmp_path, capsys):
    good = tmp_path / "train" / "good"
    good.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((40, 40, 3), i * 10, np.uint8)).save(good / f"{i}.png")
    (good / "broken.png").write_bytes(b"not a png")
    code = gan_anomaly(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m.safetensors"),
                        "--size", "32", "--epochs", "1"])
    assert code == 2
    assert "broken.png" in capsys.readouterr().err


def test_rgbd_training_on_plain_folder_is_refused(tmp_path, capsys):
    good = tmp_path / "train" / "good"
    good.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((40, 40, 3), i * 10, np.uint8)).save(good / f"{i}.png")
    code = gan_anomaly(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m.safetensors"),
                        "--mode", "rgbd", "--size", "32", "--epochs", "1"])
    assert code == 2
    assert "needs depth" in capsys.readouterr().err
