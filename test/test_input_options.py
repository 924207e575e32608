"""Inputs as users have them: photometric normalisation, depth formats, the relative-depth range
from the data, training augmentations."""

import numpy as np
import pytest
import torch
from PIL import Image

from gan_anomaly_ros.checkpoint import CheckpointError, load_checkpoint, read_preprocessing
from gan_anomaly_ros.cli import main as gan_anomaly
from gan_anomaly_ros.data.depth import DepthFormat, DepthFormatError
from gan_anomaly_ros.data.folders import DatasetError, read_depth_m
from gan_anomaly_ros.perception.preprocessing import (PreprocessConfig, PreprocessError, crop_warning,
                                           preprocess_frame, relative_depth_range)
from gan_anomaly_ros.training.augment import augment_batch, parse_augment

from depth_data import eight_bit_rgbd_dataset


def test_standardize_removes_lighting_changes_and_leaves_depth_alone():
    rng = np.random.default_rng(0)
    texture = rng.uniform(60, 120, (48, 48, 3))
    depth = np.full((48, 48), 0.5, np.float32)
    depth[20:30, 20:30] = 0.49
    config = PreprocessConfig(mode="rgbd", size=32, normalize="standardize", depth_range_m=0.02)
    dark, _ = preprocess_frame(texture.astype(np.uint8), depth, config)
    bright, _ = preprocess_frame(np.clip(texture * 1.8 + 20, 0, 255).astype(np.uint8), depth,
                                 config)
    assert np.abs(dark[:3] - bright[:3]).mean() < 0.02      # lighting gone (up to rounding)
    assert abs(float(dark[:3].mean())) < 0.02 and dark.min() >= -1 and dark.max() <= 1
    plain, _ = preprocess_frame(texture.astype(np.uint8), depth,
                                PreprocessConfig(mode="rgbd", size=32, depth_range_m=0.02))
    assert np.array_equal(dark[3], plain[3])                 # depth untouched
    flat, _ = preprocess_frame(np.full((8, 8, 3), 7, np.uint8), None,
                               PreprocessConfig(mode="gray", size=8, normalize="standardize"))
    assert not flat.any()                                    # no division by zero


def test_normalisation_is_part_of_the_checkpoint_and_unknown_ones_are_refused(
        small_checkpoint, tmp_path):
    config = read_preprocessing(small_checkpoint)
    assert config.normalize == "standardize"  # the training default
    assert config.fingerprint() != PreprocessConfig(**{**config.to_dict(),
                                                       "normalize": "none"}).fingerprint()
    with pytest.raises(PreprocessError, match="normalize must be one of"):
        PreprocessConfig(normalize="histogram")
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file
    with safe_open(str(small_checkpoint), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    preprocessing = json.loads(metadata["preprocessing"])
    metadata["preprocessing"] = json.dumps({**preprocessing, "normalize": "clahe"})
    save_file(tensors, str(tmp_path / "future.safetensors"), metadata=metadata)
    with pytest.raises(CheckpointError, match="normalize must be one of.*clahe"):
        load_checkpoint(tmp_path / "future.safetensors")
    with pytest.raises(CheckpointError, match="clahe"):
        read_preprocessing(tmp_path / "future.safetensors")


def write_depth(path, array):
    Image.fromarray(array).save(path)
    return path


def test_depth_formats_are_detected_or_refused_with_what_to_pass(tmp_path):
    mm = write_depth(tmp_path / "mm.png", np.full((4, 4), 512, np.uint16))
    assert read_depth_m(mm) == pytest.approx(0.512)
    metres = tmp_path / "m.tiff"
    Image.fromarray(np.full((4, 4), 0.75, np.float32)).save(metres)
    assert read_depth_m(metres) == pytest.approx(0.75)
    eight = write_depth(tmp_path / "eight.png", np.full((4, 4), 200, np.uint8))
    with pytest.raises(DatasetError, match=r"8-bit depth image.*--depth-scale"):
        read_depth_m(eight)
    assert read_depth_m(eight, DepthFormat(scale=0.002)) == pytest.approx(0.4)
    assert read_depth_m(eight, DepthFormat("millimetres")) == pytest.approx(0.2)
    with pytest.raises(DepthFormatError, match="needs --depth-scale"):
        DepthFormat("scaled")
    coloured = write_depth(tmp_path / "rgb.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DatasetError, match="one channel"):
        read_depth_m(coloured)


def test_relative_depth_range_follows_the_parts_relief():
    rng = np.random.default_rng(1)
    crops = []
    for _ in range(5):
        depth = np.full((64, 64), 0.50, np.float32) + rng.normal(0, 0.0005, (64, 64))
        depth[16:48, 16:48] -= 0.012   # a part 12 mm tall on the table
        depth[0, 0] = 0.9              # one wild pixel must not set the range
        depth[1, :4] = 0               # invalid pixels are ignored
        crops.append(depth)
    chosen = relative_depth_range(crops, 32)
    assert 0.012 < chosen < 0.02
    with pytest.raises(PreprocessError, match="no valid depth"):
        relative_depth_range([np.zeros((8, 8), np.float32)], 8)


def test_train_refuses_8_bit_depth_until_told_its_scale(tmp_path, capsys):
    data = eight_bit_rgbd_dataset(tmp_path / "data")
    out = tmp_path / "m.safetensors"
    common = ["train", "--data", str(data), "--out", str(out), "--mode", "rgbd", "--size", "32",
              "--crop", "fixed", "--epochs", "1", "--batch-size", "4", "--hparam", "base_width=8", "--device", "cpu"]
    assert gan_anomaly(common) == 2
    assert "--depth-scale" in capsys.readouterr().err and not out.exists()
    assert gan_anomaly(common + ["--depth-scale", "0.001"]) == 0
    checkpoint = load_checkpoint(out)
    # 40 levels of relief at 1 mm each, chosen from the data (not the old fixed 0.04 m).
    assert 0.04 < checkpoint.preprocessing.depth_range_m < 0.06
    assert checkpoint.training["depth_format"] == {"format": "scaled", "scale": 0.001}
    # eval reads the data the way training did, without being told again.
    assert gan_anomaly(["eval", "--model", str(out), "--data", str(data), "--device", "cpu",
                        "--out", str(tmp_path / "eval")]) == 0


def test_crop_smaller_than_the_input_is_warned_about():
    config = PreprocessConfig(size=64, center_crop=0.4)
    assert "26x26 px, smaller than the model input (64 px)" in crop_warning(config, 64, 64)
    assert crop_warning(config, 640, 480) is None


def test_augment_options_are_checked():
    assert parse_augment("brightness=0.1, shift=0.05,rotate=5") == {
        "brightness": 0.1, "shift": 0.05, "rotate": 5.0}
    assert parse_augment("") == {}
    with pytest.raises(ValueError, match="unknown augmentation 'blur'"):
        parse_augment("blur=1")
    with pytest.raises(ValueError, match=r"must be in \[0, 45.0\]"):
        parse_augment("rotate=90")
    with pytest.raises(ValueError, match="expected name=amount"):
        parse_augment("shift")


def test_augmentations_vary_colour_and_geometry_but_not_depth_values():
    torch.manual_seed(0)
    batch = torch.zeros(4, 4, 32, 32)
    batch[:, :3] = 0.2
    batch[:, 3, 8:24, 8:24] = 0.5                    # a raised square in depth
    light = augment_batch(batch, {"brightness": 0.2}, colour_channels=3)
    assert not torch.equal(light[:, :3], batch[:, :3]) and torch.equal(light[:, 3], batch[:, 3])
    moved = augment_batch(batch, {"shift": 0.1, "rotate": 10}, colour_channels=3)
    assert moved.shape == batch.shape and not torch.equal(moved[:, 3], batch[:, 3])
    assert moved[:, 3].max() <= 0.5 + 1e-6 and moved[:, 3].min() >= -1e-6  # reflected, no black
    assert torch.equal(augment_batch(batch, {}, 3), batch)


def test_memory_of_an_augmented_run_holds_repeatable_augmented_copies():
    from gan_anomaly_ros.training.augment import memory_inputs

    images = torch.rand(3, 3, 16, 16) * 2 - 1
    assert memory_inputs(images, {}, 3) is images
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = memory_inputs(images, {"rotate": 10.0, "shift": 0.05}, 3, seed=1)
    assert torch.equal(torch.get_rng_state(), before)  # training's random stream untouched
    second = memory_inputs(images, {"rotate": 10.0, "shift": 0.05}, 3, seed=1)
    assert first.shape == (12, 3, 16, 16) and torch.equal(first, second)
    assert torch.equal(first[:3], images) and not torch.equal(first[3:6], images)
