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


def test_models_lists_every_model_with_hparams_and_default_score(capsys):
    from gan_anomaly_ros.models import MODELS

    assert gan_anomaly(["models"]) == 0
    out = capsys.readouterr().out
    for name, model_class in MODELS.items():
        assert f"\n{name}: " in "\n" + out
    assert "lr=" in out and "default score:" in out and "ocr_gan: OCR-GAN" in out


def test_train_help_shows_the_model_choices(capsys):
    import pytest

    with pytest.raises(SystemExit):
        gan_anomaly(["train", "--help"])
    out = capsys.readouterr().out
    assert "{adgan,anogan,bigan,f_anogan,ganomaly,ocr_gan,skip_ganomaly,transgan,voxel_gan}" in out
    assert "--threads" in out and "--patch-size" in out and "--augment" in out


def plain_dataset(root, count=6, size=40):
    good = root / "train" / "good"
    good.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(np.full((size, size, 3), 60 + i * 10, np.uint8)).save(good / f"{i}.png")
    return root


def test_bad_settings_are_refused_before_any_work(tmp_path, capsys):
    data = plain_dataset(tmp_path / "data")
    out = tmp_path / "m.safetensors"
    base = ["train", "--data", str(data), "--out", str(out), "--size", "32", "--epochs", "1",
            "--model", "ganomaly"]
    assert gan_anomaly(base + ["--patch-size", "64"]) == 2
    assert "--patch-size 64 is larger than the image" in capsys.readouterr().err
    assert gan_anomaly(base + ["--hparam", "learning_rate=0.1"]) == 2
    assert "unknown hyper-parameter(s) ['learning_rate']" in capsys.readouterr().err
    assert gan_anomaly(base + ["--score", "memory:network=critic"]) == 2
    assert "has no network 'critic'" in capsys.readouterr().err
    assert not out.exists()


def test_progress_is_one_line_per_epoch_when_not_a_terminal(tmp_path):
    """Written to a pipe or a log file, training prints plain lines, no carriage returns."""
    import os
    import subprocess
    import sys

    data = plain_dataset(tmp_path / "data")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(__import__("pathlib").Path(__file__).resolve().parents[1])]
        + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    done = subprocess.run(
        [sys.executable, "-m", "gan_anomaly_ros.cli", "train", "--data", str(data), "--out",
         str(tmp_path / "m.safetensors"), "--size", "32", "--epochs", "2", "--batch-size", "2",
         "--hparam", "base_width=8", "--threads", "1", "--device", "cpu",
         "--augment", "brightness=0.1,shift=0.05,rotate=5", "--patch-size", "32"],
        capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr
    assert "training f_anogan: epoch 1/2" in done.stderr  # the default model
    assert "training f_anogan: epoch 2/2" in done.stderr
    assert "reading train: 6 img in" in done.stderr
    training = load_checkpoint(tmp_path / "m.safetensors").training
    assert training["augment"] == {"brightness": 0.1, "shift": 0.05, "rotate": 5.0}


def test_patch_mode_trains_on_patches_and_scores_full_images(tmp_path):
    data = plain_dataset(tmp_path / "data", count=8, size=64)
    out = tmp_path / "patch.safetensors"
    assert gan_anomaly(["train", "--data", str(data), "--out", str(out), "--size", "64",
                        "--patch-size", "32", "--epochs", "1", "--batch-size", "4",
                        "--hparam", "base_width=8", "--device", "cpu"]) == 0
    checkpoint = load_checkpoint(out)
    assert checkpoint.model.size == 32 and checkpoint.preprocessing.size == 64
    assert checkpoint.training["patch_size"] == 32


TRAIN_ONE_EPOCH = ["train", "--size", "32", "--epochs", "1", "--batch-size", "4",
                   "--hparam", "base_width=8", "--device", "cpu"]


def dataset_with_unmasked_test(tmp_path):
    """Plain good images, and a test split of good and dark images without masks."""
    data = plain_dataset(tmp_path / "data", count=8)
    for label, value in (("good", 90), ("dark", 5)):
        folder = data / "test" / label
        folder.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((40, 40, 3), value, np.uint8)).save(folder / f"{i}.png")
    return data


def test_gallery_says_no_mask_when_the_dataset_has_none(tmp_path):
    from gan_anomaly_ros.evaluation import evaluate_folder

    data, out = dataset_with_unmasked_test(tmp_path), tmp_path / "m.safetensors"
    assert gan_anomaly(TRAIN_ONE_EPOCH + ["--data", str(data), "--out", str(out)]) == 0
    evaluate_folder(out, data, device="cpu", progress=False, out_dir=tmp_path / "eval")
    with Image.open(tmp_path / "eval" / "gallery.png") as image:
        gallery = np.asarray(image.convert("L"))
    mask_column = gallery[18:, 170 + 3 * 128:]
    # Grey with white words, never the all-black tile that reads as "no defect".
    assert (mask_column > 200).any() and (np.median(mask_column) > 50)


def test_train_warns_when_its_threshold_flags_no_validation_defect(tmp_path, capsys):
    data, out = dataset_with_unmasked_test(tmp_path), tmp_path / "m.safetensors"
    assert gan_anomaly(TRAIN_ONE_EPOCH + ["--data", str(data), "--out", str(out),
                                          "--val-data", str(data), "--k-sigma", "1e6"]) == 0
    captured = capsys.readouterr()
    assert "lies above every defective validation image's score" in captured.err
    assert json.loads(captured.out)["validation_defects_flagged"] == 0.0


def test_the_demo_retrains_a_default_model_made_with_older_settings(small_checkpoint, capsys):
    from gan_anomaly_ros.demo import default_model_is_current

    assert not default_model_is_current(small_checkpoint)  # a GANomaly, not the demo's model
    assert "older demo settings" in capsys.readouterr().out


def test_bringup_refuses_settings_that_do_not_go_together(capsys):
    """Before any node starts: a message naming the settings, exit 2."""
    assert gan_anomaly(["bringup", "--secure", "--composed"]) == 2
    assert "secure needs one process per node" in capsys.readouterr().err
