"""ROS-free core: preprocessing, calibration, metrics, anomaly maps, graph, model training."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from gan_anomaly_ros.anomaly_map import map_box_to_image, overlay_image, strongest_region
from gan_anomaly_ros.calibration import Calibration, calibrate
from gan_anomaly_ros.graph import inspection_graph, ros_arguments
from gan_anomaly_ros.metrics import auroc, threshold_metrics
from gan_anomaly_ros.models import create_model
from gan_anomaly_ros.perception.preprocessing import PreprocessConfig, PreprocessError, preprocess_frame


def test_core_imports_no_rclpy():
    code = ("import sys, gan_anomaly_ros.training, gan_anomaly_ros.scoring, gan_anomaly_ros.cli, "
            "gan_anomaly_ros.evaluation, gan_anomaly_ros.graph, gan_anomaly_ros.bringup, "
            "gan_anomaly_ros.fusion; "
            "assert 'rclpy' not in sys.modules, 'core imported rclpy'")
    subprocess.run([sys.executable, "-c", code], check=True)


def frame(height=120, width=160):
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
            rng.uniform(0.4, 0.6, (height, width)).astype(np.float32))


@pytest.mark.parametrize("mode,channels", [("rgb", 3), ("gray", 1), ("rgbd", 4)])
def test_preprocess_shapes_and_range(mode, channels):
    rgb, depth = frame()
    x, crop = preprocess_frame(rgb, depth, PreprocessConfig(mode=mode, size=32, center_crop=0.5))
    assert x.shape == (channels, 32, 32) and x.dtype == np.float32
    assert x.min() >= -1 and x.max() <= 1
    assert crop == (50, 30, 60, 60)


def test_preprocess_depth_is_relative_and_invalid_is_zero():
    rgb, _ = frame()
    depth = np.full((120, 160), 0.5, np.float32)
    depth[:, :40] = 0.49   # 1 cm closer than the median: raised relief
    depth[:15] = 0.0       # invalid
    x, _ = preprocess_frame(rgb, depth, PreprocessConfig(mode="rgbd", size=16, depth_range_m=0.02))
    assert x[3, 8:, :3] == pytest.approx(0.5, abs=1e-5)
    assert x[3, 8:, 6:] == pytest.approx(0.0, abs=1e-5)
    assert np.all(x[3, :2] == 0.0)


def test_preprocess_refuses_bad_frames():
    rgb, depth = frame()
    with pytest.raises(PreprocessError, match="needs a depth"):
        preprocess_frame(rgb, None, PreprocessConfig(mode="rgbd"))
    with pytest.raises(PreprocessError, match="not aligned"):
        preprocess_frame(rgb, depth[:50], PreprocessConfig(mode="rgbd"))
    with pytest.raises(PreprocessError, match="empty"):
        preprocess_frame(np.zeros((0, 0, 3), np.uint8), None, PreprocessConfig())
    with pytest.raises(PreprocessError, match="mode"):
        PreprocessConfig(mode="rgbx")
    with pytest.raises(PreprocessError, match="does not fit"):
        preprocess_frame(rgb, None, PreprocessConfig(crop_box=(100, 0, 100, 50)))


def test_fingerprint_changes_with_settings():
    assert PreprocessConfig(size=32).fingerprint() != PreprocessConfig(size=64).fingerprint()
    assert PreprocessConfig(size=32).fingerprint() == PreprocessConfig(size=32).fingerprint()


def test_calibration_puts_threshold_at_half():
    rng = np.random.default_rng(1)
    scores = rng.normal(1.0, 0.1, 50)
    cal = calibrate(scores, rng.uniform(0, 1, (50, 8, 8)))
    assert cal.normalize(cal.threshold) == pytest.approx(0.5)
    assert cal.normalize(scores.mean()) < 0.1
    mad = np.median(np.abs(scores - np.median(scores)))
    assert cal.threshold == pytest.approx(np.median(scores) + 3 * 1.4826 * mad)
    # For normally distributed scores the robust spread estimates the standard deviation.
    assert cal.scale == pytest.approx(0.1, rel=0.35)
    assert not cal.is_anomaly(scores.mean()) and cal.is_anomaly(cal.threshold + 1e-6)
    with pytest.raises(ValueError, match="NaN"):
        calibrate([1.0, float("nan")], np.zeros((2, 4, 4)))


def test_calibration_ignores_a_few_outlying_normal_scores():
    """Two odd good parts must not drag the threshold to where most defects pass."""
    rng = np.random.default_rng(2)
    scores = np.concatenate([rng.normal(1.0, 0.1, 48), [3.0, 4.0]])
    cal = calibrate(scores, np.zeros((50, 4, 4)))
    assert cal.threshold < 1.5 < scores.mean() + 3 * scores.std(ddof=1)
    assert cal.rule.startswith("median")


def test_calibration_from_old_checkpoints_names_the_old_rule():
    old = {"threshold": 1.0, "scale": 0.1, "map_threshold": 0.5, "n_images": 10, "k_sigma": 3.0}
    assert Calibration.from_dict(old).rule == "mean + k * std"


def test_metrics():
    assert auroc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert auroc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert auroc([0, 1], [0.5, 0.5]) == 0.5
    m = threshold_metrics([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.2], 0.5)
    assert m["confusion"] == {"tp": 1, "fp": 1, "fn": 1, "tn": 1} and m["f1"] == 0.5


def test_strongest_region_and_mapping():
    heat = np.zeros((32, 32), np.float32)
    heat[4:8, 10:20] = 1.0
    heat[20:30, 20:22] = 0.8
    assert strongest_region(heat, 0.5) == (10, 4, 10, 4)
    assert strongest_region(heat * 0.1, 0.5) is None
    assert map_box_to_image((10, 4, 10, 4), 32, (100, 50, 64, 64)) == (120, 58, 20, 8)
    rgb = np.zeros((120, 200, 3), np.uint8)
    heatmap, overlay = overlay_image(rgb, heat, (100, 50, 64, 64), (120, 58, 20, 8))
    assert heatmap.shape == overlay.shape == (120, 200, 3) and heatmap.dtype == np.uint8
    assert heatmap[:50].max() == 0 and heatmap[60, 125].any()


def test_graph_defines_the_pipeline_once():
    graph = inspection_graph(camera="replay", model="/m.safetensors")
    assert [n.executable for n in graph.nodes] == ["replay_camera_node", "preprocess_node",
                                                   "scorer_node"]
    real = inspection_graph(camera="realsense", model="/m.safetensors")
    assert [n.executable for n in real.nodes] == ["preprocess_node", "scorer_node"]
    assert real.includes[0].arguments["align_depth.enable"] == "true"
    args = ros_arguments(graph.nodes[2])
    assert "__node:=scorer" in args and "model:='/m.safetensors'" in args
    with pytest.raises(ValueError, match="camera"):
        inspection_graph(camera="kinect")


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_ganomaly_learns_and_maps(channels):
    torch.manual_seed(0)
    model = create_model("ganomaly", channels, 32, base_width=8, latent_dim=16)
    optimizers = model.configure_optimizers()
    # Normal data: smooth gradients; a model that trains reconstructs them better over time.
    ramp = torch.linspace(-0.8, 0.8, 32)
    batch = (ramp.view(1, 1, 1, 32) * torch.rand(16, channels, 1, 1)).expand(16, channels, 32, 32)
    batch = batch.contiguous()
    first = model.training_step(batch, optimizers)["contextual"]
    for _ in range(30):
        last = model.training_step(batch, optimizers)["contextual"]
    assert last < first * 0.7
    model.eval()
    with torch.no_grad():
        prediction = model.predict(batch[:2])
    assert prediction.scores.shape == (2,) and prediction.anomaly_maps.shape == (2, 32, 32)
    assert prediction.reconstructions.shape == batch[:2].shape


def test_model_refuses_bad_sizes():
    with pytest.raises(ValueError, match="image size must be one of"):
        create_model("ganomaly", 3, 100)
    with pytest.raises(ValueError, match="unknown model"):
        create_model("nope", 3, 64)


def test_roc_curve_matches_auroc():
    from gan_anomaly_ros.metrics import roc_curve

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.normal(labels * 0.8, 1.0), 1)  # rounded: many ties
    fpr, tpr = roc_curve(labels, scores)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.trapezoid(tpr, fpr) == pytest.approx(auroc(labels, scores))
