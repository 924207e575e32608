"""A small trained checkpoint shared by the tests that need one (trained once per session).

It goes through the real command line: `gan-anomaly synth` writes synthetic RGB-D scenes and
`gan-anomaly train` trains and calibrates GANomaly on them, exactly as a user would.
"""

from __future__ import annotations

import pytest

from gan_anomaly_ros.cli import main as gan_anomaly

SMALL_TRAINING = ["--model", "ganomaly", "--mode", "rgbd", "--size", "64", "--center-crop", "0.4", "--epochs", "30",
                  "--batch-size", "16", "--hparam", "base_width=16", "--hparam", "latent_dim=64", "--hparam", "lr=0.001",
                  "--device", "cpu"]


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic") / "scenes"
    assert gan_anomaly(["synth", "--out", str(root), "--n-train", "80", "--n-test-good", "6",
                        "--n-test-per-defect", "2", "--seed", "3"]) == 0
    return root


@pytest.fixture(scope="session")
def small_checkpoint(synthetic_dataset, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "small.safetensors"
    assert gan_anomaly(["train", "--data", str(synthetic_dataset), "--out", str(path),
                        *SMALL_TRAINING]) == 0
    return path


VOXEL_TRAINING = ["--model", "voxel_gan", "--mode", "voxel", "--size", "32", "--epochs", "2",
                  "--batch-size", "16", "--hparam", "base_width=4", "--hparam", "latent_dim=16",
                  "--device", "cpu"]


@pytest.fixture(scope="session")
def voxel_checkpoint(synthetic_dataset, tmp_path_factory):
    """A tiny voxel GAN (grids of the parts the perception code finds): for plumbing, not
    for accuracy."""
    path = tmp_path_factory.mktemp("voxel_model") / "voxel.safetensors"
    assert gan_anomaly(["train", "--data", str(synthetic_dataset), "--out", str(path),
                        *VOXEL_TRAINING]) == 0
    return path


HEIGHT_TRAINING = ["--model", "f_anogan", "--mode", "height", "--size", "32", "--epochs", "2",
                   "--batch-size", "16", "--hparam", "base_width=8", "--hparam", "latent_dim=16",
                   "--device", "cpu"]


def map_checkpoint(mode, synthetic_dataset, tmp_path_factory):
    path = tmp_path_factory.mktemp(f"{mode}_model") / f"{mode}.safetensors"
    training = [mode if arg == "height" else arg for arg in HEIGHT_TRAINING]
    assert gan_anomaly(["train", "--data", str(synthetic_dataset), "--out", str(path),
                        *training]) == 0
    return path


@pytest.fixture(scope="session")
def height_checkpoint(synthetic_dataset, tmp_path_factory):
    """A tiny f-AnoGAN on the parts' relative-height maps: for plumbing, not for accuracy."""
    return map_checkpoint("height", synthetic_dataset, tmp_path_factory)


@pytest.fixture(scope="session")
def part_colour_checkpoint(synthetic_dataset, tmp_path_factory):
    """A tiny f-AnoGAN on the parts' orthographic colour views: for plumbing."""
    return map_checkpoint("part_colour", synthetic_dataset, tmp_path_factory)
