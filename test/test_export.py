"""`gan-anomaly export` and the exported runtimes: the split of preprocessing into a raw crop and
its normalisation (numpy and torch agree, training's output unchanged), ONNX and TorchScript
exports of small models that score like the eager model, and the refusals (latent-search
scores, another checkpoint's export, corrupt and foreign files)."""

import numpy as np
import pytest
import torch
from PIL import Image

from gan_anomaly_ros.calibration import Calibration
from gan_anomaly_ros.checkpoint import load_checkpoint, save_checkpoint
from gan_anomaly_ros.cli import main as gan_anomaly
from gan_anomaly_ros.export import ExportError
from gan_anomaly_ros.export.deployable import check_exportable
from gan_anomaly_ros.export.example_inputs import random_raw_inputs
from gan_anomaly_ros.export.exporting import default_export_path, export_checkpoint
from gan_anomaly_ros.export.normalization import InputNormalization, valid_median
from gan_anomaly_ros.export.verify import ATOL, RTOL
from gan_anomaly_ros.models import create_model
from gan_anomaly_ros.perception.frame_input import prepare_frame
from gan_anomaly_ros.perception.preprocessing import (PreprocessConfig, normalize_input,
                                                      preprocess_frame, resize_crop)
from gan_anomaly_ros.scoring import InputMismatchError, Scorer

CALIBRATION = Calibration(threshold=0.5, scale=0.1, map_threshold=0.3, n_images=8)
FORMATS = {"onnx": "onnxruntime", "torchscript": "torchscript"}
# Gray colour goes through the BT.601 weights in another order than it used to (luminance of
# 0..255, then scaled): equal to float32 rounding, no more.
UNCHANGED_TOLERANCE = 1e-6
NUMPY_TORCH_TOLERANCE = 1e-5


# -- preprocessing: raw crop + normalisation ------------------------------------------------

def old_preprocess_frame(rgb, depth_m, config):
    """preprocess_frame as it was before the split (fixed crops), the reference."""
    from gan_anomaly_ros.perception.preprocessing import crop_box_for, normalize_depth, standardize
    x, y, w, h = crop_box_for(config, rgb.shape[1], rgb.shape[0])
    crop = Image.fromarray(np.ascontiguousarray(rgb[y:y + h, x:x + w]))
    colour = np.asarray(crop.resize((config.size,) * 2, Image.BILINEAR)).astype(np.float32)
    colour = colour / 127.5 - 1.0
    if config.mode == "gray":
        channels = [colour @ np.array([0.299, 0.587, 0.114], np.float32)]
    else:
        channels = [colour[..., c] for c in range(3)]
    if config.normalize == "standardize":
        channels = list(standardize(np.stack(channels)))
    if config.uses_depth:
        depth = Image.fromarray(np.ascontiguousarray(depth_m[y:y + h, x:x + w], np.float32))
        small = np.asarray(depth.resize((config.size,) * 2, Image.NEAREST))
        channels.append(normalize_depth(small, config.depth_range_m))
    return np.stack(channels).astype(np.float32)


def random_frame(rng, height=48, width=60):
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    depth = rng.uniform(0.45, 0.5, (height, width)).astype(np.float32)
    depth[rng.random(depth.shape) < 0.15] = 0.0
    depth[0, :4] = np.nan  # what a driver may send for "no measurement"
    return rgb, depth


@pytest.mark.parametrize("mode", ["rgb", "gray", "rgbd"])
@pytest.mark.parametrize("normalize", ["none", "standardize"])
def test_preprocess_frame_is_the_raw_crop_normalised_and_unchanged(mode, normalize):
    rng = np.random.default_rng(7)
    config = PreprocessConfig(mode=mode, size=32, center_crop=0.7, normalize=normalize,
                              depth_range_m=0.03)
    for _ in range(10):
        rgb, depth = random_frame(rng)
        raw, box = resize_crop(rgb, depth, config)
        assert raw.shape == config.input_shape and np.isfinite(raw).all()
        assert raw[:config.colour_channels].min() >= 0 and raw.max() <= 255
        new, new_box = preprocess_frame(rgb, depth, config)
        assert new_box == box and np.array_equal(new, normalize_input(raw, config))
        old = old_preprocess_frame(rgb, depth, config)
        assert np.abs(new - old).max() <= UNCHANGED_TOLERANCE
        if mode != "gray":
            assert np.array_equal(new, old)


def test_prepare_frame_hands_out_the_raw_crop_on_request():
    rgb, depth = random_frame(np.random.default_rng(1))
    config = PreprocessConfig(mode="rgb", size=16, normalize="standardize")
    normal = prepare_frame(rgb, None, None, config)
    raw = prepare_frame(rgb, None, None, config, normalized=False)
    assert raw.crop == normal.crop
    assert np.array_equal(normalize_input(raw.model_input, config), normal.model_input)


def test_depth_median_is_numpy_median():
    values = torch.tensor([[4.0, 1.0, 3.0, 2.0, 0.0],      # even: mean of the middle two
                           [5.0, 0.0, 1.0, 9.0, 0.0],      # odd
                           [0.0, 0.0, 0.0, 0.0, 0.0]])     # none valid
    valid = values > 0
    median = valid_median(values, valid)[:, 0]
    assert median[0] == np.median([4, 1, 3, 2]) == 2.5
    assert median[1] == np.median([5, 1, 9]) == 5.0
    assert torch.isinf(median[2])


@pytest.mark.parametrize("mode", ["rgb", "gray", "rgbd"])
@pytest.mark.parametrize("normalize", ["none", "standardize"])
def test_torch_normalisation_matches_numpy(mode, normalize):
    rng = np.random.default_rng(3)
    config = PreprocessConfig(mode=mode, size=16, normalize=normalize, depth_range_m=0.02)
    raws = [resize_crop(*random_frame(rng), config)[0] for _ in range(6)]
    raws[1][:config.colour_channels] = 7.0                    # a flat image
    if config.uses_depth:
        raws[2][-1] = 0.0                                     # no valid depth at all
        raws[3][-1, :, :9] = 0.0                              # an odd count of valid pixels
    raw = np.stack(raws)
    expected = np.stack([normalize_input(r, config) for r in raw])
    got = InputNormalization(config)(torch.from_numpy(raw)).numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= NUMPY_TORCH_TOLERANCE


# -- small checkpoints -----------------------------------------------------------------------

def one_training_step(model, config, seed=0):
    """One optimisation step on random inputs: weights off their initialisation."""
    torch.manual_seed(seed)
    raw = random_raw_inputs(config, 8, seed)
    inputs = torch.from_numpy(np.stack([normalize_input(r, config) for r in raw]))
    model.train()
    model.training_step(inputs, model.configure_optimizers())
    model.eval()
    return inputs


def small_checkpoint_file(path, name, config, score=None, **hparams):
    torch.manual_seed(0)
    model = create_model(name, config.channels, config.size, **hparams)
    inputs = one_training_step(model, config)
    if score is not None:
        model.set_score(score)
        # Other images for a combination's scale, as training's held-out ones are.
        reference = np.stack([normalize_input(r, config)
                              for r in random_raw_inputs(config, 8, seed=99)])
        model.fit_score(inputs, reference=torch.from_numpy(reference))
    save_checkpoint(path, model, config, CALIBRATION)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """f_anogan with the default model's kind of score (a combination of feature memories,
    RGB-D, standardised), GANomaly with its native score (gray), f_anogan on relative-height
    maps and on part colour views, a voxel GAN."""
    root = tmp_path_factory.mktemp("export")
    return {
        "f_anogan": small_checkpoint_file(
            root / "f_anogan.safetensors", "f_anogan",
            PreprocessConfig(mode="rgbd", size=32, normalize="standardize", depth_range_m=0.03),
            score="combined(memory:network=critic,layer=-2,reduce=top1 + "
                  "memory:network=encoder,layer=-1,reduce=mean)",
            base_width=8, latent_dim=16),
        "ganomaly": small_checkpoint_file(
            root / "ganomaly.safetensors", "ganomaly", PreprocessConfig(mode="gray", size=32),
            base_width=8, latent_dim=16),
        "f_anogan_height": small_checkpoint_file(
            root / "f_anogan_height.safetensors", "f_anogan",
            PreprocessConfig(mode="height", size=32, crop_mode="part"), score="residual",
            base_width=8, latent_dim=16),
        "f_anogan_part_colour": small_checkpoint_file(
            root / "f_anogan_part_colour.safetensors", "f_anogan",
            PreprocessConfig(mode="part_colour", size=32, crop_mode="part"),
            score="memory:network=critic,layer=-3,reduce=top1", base_width=8, latent_dim=16),
        "voxel_gan": small_checkpoint_file(
            root / "voxel_gan.safetensors", "voxel_gan",
            PreprocessConfig(mode="voxel", size=16, crop_mode="part"), score="residual",
            base_width=4, latent_dim=8),
    }


@pytest.fixture(scope="module")
def exports(checkpoints):
    """(model, format) -> exported file, made once."""
    return {(name, fmt): export_checkpoint(path, fmt)
            for name, path in checkpoints.items() for fmt in FORMATS}


# -- exported runtimes score like eager ------------------------------------------------------

@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("name", ["f_anogan", "ganomaly", "f_anogan_height",
                                  "f_anogan_part_colour", "voxel_gan"])
def test_exported_model_scores_like_eager(checkpoints, exports, name, fmt):
    path = exports[(name, fmt)]
    assert path == default_export_path(checkpoints[name], fmt) and path.is_file()
    eager = Scorer(checkpoints[name], "cpu")
    exported = Scorer(checkpoints[name], "cpu", FORMATS[fmt], exported_path=path)
    for count in (1, 3):  # the batch size is free
        raw = random_raw_inputs(eager.preprocessing, count, seed=count)
        want, got = eager.score_raw_batch(raw), exported.score_raw_batch(raw)
        scores = np.array([[w.score, g.score] for w, g in zip(want, got)])
        assert np.allclose(scores[:, 1], scores[:, 0], rtol=RTOL, atol=ATOL), scores
        for w, g in zip(want, got):
            assert g.anomaly_map.shape == w.anomaly_map.shape
            assert np.allclose(g.anomaly_map, w.anomaly_map, rtol=RTOL, atol=ATOL)
            assert g.is_anomaly == w.is_anomaly and g.reconstruction is None


def test_eager_scorer_normalises_raw_crops_like_training(checkpoints):
    scorer = Scorer(checkpoints["f_anogan"], "cpu")
    raw = random_raw_inputs(scorer.preprocessing, 2, seed=5)
    normalised = np.stack([normalize_input(r, scorer.preprocessing) for r in raw])
    assert [r.score for r in scorer.score_raw_batch(raw)] == \
        [r.score for r in scorer.score_batch(normalised)]
    # A normalised input sent as raw (an older preprocess node) is refused, not scored.
    with pytest.raises(InputMismatchError, match="normalised already"):
        scorer.score_raw(normalised[0])


def test_exported_runtime_takes_raw_crops_only(checkpoints, exports):
    scorer = Scorer(checkpoints["ganomaly"], "cpu", "onnxruntime",
                    exported_path=exports[("ganomaly", "onnx")])
    with pytest.raises(InputMismatchError, match="raw crops"):
        scorer.score(np.zeros((1, 32, 32), np.float32))


# -- refusals ---------------------------------------------------------------------------------

def test_latent_search_scores_are_refused_and_their_memory_scores_export():
    model = create_model("anogan", 3, 32, base_width=8, latent_dim=16)
    model.set_score("native")
    with pytest.raises(ExportError, match="searches the latent space"):
        check_exportable(model)
    model.set_score("residual")
    with pytest.raises(ExportError, match="searches the latent space"):
        check_exportable(model)
    model.set_score("memory:network=discriminator")  # features only: no search
    check_exportable(model)


def test_the_cli_refuses_a_latent_search_model(tmp_path, capsys):
    path = small_checkpoint_file(tmp_path / "anogan.safetensors", "anogan",
                                 PreprocessConfig(mode="rgb", size=32), base_width=8,
                                 latent_dim=16, search_steps=2)
    assert gan_anomaly(["export", str(path), "--format", "torchscript"]) == 2
    assert "searches the latent space" in capsys.readouterr().err
    assert not default_export_path(path, "torchscript").exists()


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_an_export_of_another_checkpoint_is_refused(checkpoints, exports, fmt):
    other = exports[("f_anogan", fmt)]
    owner = load_checkpoint(checkpoints["f_anogan"]).checkpoint_id
    with pytest.raises(ExportError, match=f"exported from checkpoint {owner}, the scorer's "
                                          "checkpoint is"):
        Scorer(checkpoints["ganomaly"], "cpu", FORMATS[fmt], exported_path=other)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_corrupt_missing_and_foreign_files_are_refused(checkpoints, exports, tmp_path, fmt):
    import onnx
    from onnx import TensorProto, helper

    runtime, ckpt = FORMATS[fmt], checkpoints["ganomaly"]
    data = exports[("ganomaly", fmt)].read_bytes()
    truncated = tmp_path / "truncated"
    truncated.write_bytes(data[:len(data) // 2])
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a model at all " * 50)
    for broken in (truncated, garbage):
        with pytest.raises(ExportError, match="corrupt"):
            Scorer(ckpt, "cpu", runtime, exported_path=broken)
    with pytest.raises(ExportError, match="does not exist"):
        Scorer(ckpt, "cpu", runtime, exported_path=tmp_path / "nope")
    with pytest.raises(ExportError, match="needs the exported model"):
        Scorer(ckpt, "cpu", runtime)
    # Valid files of the right kind that no `gan-anomaly export` made.
    foreign = tmp_path / "foreign"
    if fmt == "onnx":
        node = helper.make_node("Identity", ["raw"], ["scores"])
        value = helper.make_tensor_value_info("raw", TensorProto.FLOAT, [1])
        graph = helper.make_graph([node], "g", [value],
                                  [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1])])
        onnx.save(helper.make_model(graph), str(foreign))
    else:
        torch.save({"weights": torch.zeros(3)}, foreign)  # a pickle: never loaded
    with pytest.raises(ExportError, match="not a gan_anomaly_ros"):
        Scorer(ckpt, "cpu", runtime, exported_path=foreign)


# -- the command -----------------------------------------------------------------------------

def test_export_command_writes_next_to_the_checkpoint_and_compares(checkpoints, tmp_path,
                                                                   capsys):
    out = tmp_path / "sub" / "ganomaly.pt"
    assert gan_anomaly(["export", str(checkpoints["ganomaly"]), "--format", "torchscript",
                        "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "max |score difference| against eager" in text
    difference = float(text.split("against eager: ")[1].split()[0])
    assert difference <= ATOL
    scorer = Scorer(checkpoints["ganomaly"], "cpu", "torchscript", exported_path=out)
    assert scorer.runtime.name == "torchscript"
