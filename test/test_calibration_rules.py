"""Thresholds people can act on: the default rule, a target false-alarm rate, a labelled
calibration, and what `eval` says about where the threshold sits."""

import json
import shutil

import numpy as np
import pytest

from gan_anomaly_ros.calibration import (calibrate, calibrate_labeled, f1_optimal_threshold,
                                         false_alarm_threshold)
from gan_anomaly_ros.checkpoint import load_checkpoint
from gan_anomaly_ros.cli import main as gan_anomaly
from gan_anomaly_ros.evaluation import threshold_position, threshold_warnings

MAPS = np.zeros((3, 4, 4))


def test_false_alarm_rate_threshold_leaves_at_most_that_share_above():
    scores = np.arange(100, dtype=float)
    threshold = false_alarm_threshold(scores, 0.05)
    assert np.sum(scores > threshold) == 5
    calibration = calibrate(scores, MAPS, max_false_alarm_rate=0.05)
    assert calibration.threshold == threshold and "false-alarm rate <= 0.05" in calibration.rule
    assert calibration.k_sigma is None
    few = calibrate(np.arange(20, dtype=float), MAPS, max_false_alarm_rate=0.01)
    assert few.threshold == 19 and "cannot be checked" in few.rule
    with pytest.raises(ValueError, match=r"must be in \(0, 1\)"):
        calibrate(scores, MAPS, max_false_alarm_rate=1.5)


def test_default_rule_is_named_with_its_k():
    calibration = calibrate(np.arange(30.0), MAPS, k_sigma=2.5)
    assert calibration.rule == "median + 2.5 * 1.4826 * MAD of held-out normal scores"
    few = calibrate(np.array([1.0, 2.0, 3.0, 4.0]), MAPS)
    assert few.rule.endswith("(only 4 images: an uncertain threshold)")


def test_small_training_sets_keep_enough_images_out_for_the_threshold():
    from gan_anomaly_ros.training.run import holdout_count, split_holdout

    assert holdout_count(752, 0.1) == 75
    assert holdout_count(100, 0.1) == 20      # not 10
    assert holdout_count(40, 0.1) == 10       # a quarter when 20 would leave too few
    assert holdout_count(4, 0.1) == 2
    train, held = split_holdout(100, 0.1, seed=0)
    assert len(held) == 20 and not set(train) & set(held)
    assert set(split_holdout(100, 0.1, seed=0, n_hold=10)[1]) <= set(held)


def test_f1_optimal_threshold_separates_what_can_be_separated():
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9, 1.0])
    labels = np.array([0, 0, 0, 1, 1, 1])
    threshold = f1_optimal_threshold(scores, labels)
    assert 0.3 < threshold < 0.8 and threshold == pytest.approx(0.55)
    # An overlap: the best F1 flags the two clear defects and the ambiguous pair's defect.
    scores = np.array([0.1, 0.5, 0.6, 0.55, 0.9, 1.0])
    labels = np.array([0, 0, 0, 1, 1, 1])
    threshold = f1_optimal_threshold(scores, labels)
    predicted = scores > threshold
    assert predicted[labels == 1].sum() >= 2
    calibration = calibrate_labeled(scores, labels, np.array([0.1, 0.2, 0.3]), MAPS, "folder")
    assert calibration.threshold == threshold and "F1-optimal on labelled folder" in calibration.rule
    with pytest.raises(ValueError, match="needs good and defective"):
        calibrate_labeled(scores, np.ones(6), np.array([0.1, 0.2]), MAPS, "folder")


def test_eval_says_where_the_threshold_sits():
    labels = np.array([0, 0, 1, 1])
    position = threshold_position(labels, np.array([0.1, 0.2, 0.3, 0.4]), threshold=0.5)
    assert position["rank_among_scores"] == 1.0 and position["defective_flagged"] == 0.0
    assert threshold_warnings(position) == ["the threshold lies above every test score: "
                                            "nothing is flagged"]
    position = threshold_position(labels, np.array([0.1, 0.6, 0.3, 0.4]), threshold=0.5)
    assert threshold_warnings(position) == ["the threshold flags none of the defective test "
                                            "images"]
    position = threshold_position(labels, np.array([0.1, 0.2, 0.7, 0.8]), threshold=0.5)
    assert position == {"good_flagged": 0.0, "defective_flagged": 1.0, "rank_among_scores": 0.5,
                        "score_range": [0.1, 0.8]}
    assert threshold_warnings(position) == []


def labelled_folder(synthetic_dataset, root, defects=("hole", "stain")):
    """A small calibration folder apart from the evaluation data: good/ and defect folders."""
    for label in ("good",) + tuple(defects):
        shutil.copytree(synthetic_dataset / "test" / label, root / label)
    return root


def test_calibrate_with_labelled_folder_and_false_alarm_rate(small_checkpoint, synthetic_dataset,
                                                              tmp_path, capsys):
    out = tmp_path / "labelled.safetensors"
    folder = labelled_folder(synthetic_dataset, tmp_path / "calibration_parts")
    assert gan_anomaly(["calibrate", "--model", str(small_checkpoint), "--data",
                        str(synthetic_dataset), "--labeled", str(folder), "--out", str(out),
                        "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert "F1-optimal on labelled" in summary["new"]["rule"]
    assert load_checkpoint(out).calibration.rule == summary["new"]["rule"]
    eval_json = tmp_path / "metrics.json"
    assert gan_anomaly(["eval", "--model", str(out), "--data", str(synthetic_dataset),
                        "--device", "cpu", "--json", str(eval_json),
                        "--out", str(tmp_path / "eval")]) == 0
    err = capsys.readouterr().err
    metrics = json.loads(eval_json.read_text())
    assert metrics["threshold_rule"] == summary["new"]["rule"] and "set by: F1-optimal" in err
    assert set(metrics["threshold_position"]) == {"good_flagged", "defective_flagged",
                                                  "rank_among_scores", "score_range"}
    out2 = tmp_path / "rate.safetensors"
    assert gan_anomaly(["calibrate", "--model", str(small_checkpoint), "--data",
                        str(synthetic_dataset), "--max-false-alarm-rate", "0.2",
                        "--out", str(out2), "--device", "cpu"]) == 0
    assert "false-alarm rate <= 0.2" in load_checkpoint(out2).calibration.rule


@pytest.mark.parametrize("keep,message", [(("good",), "0 defective"),
                                          (("hole",), "0 good")])
def test_labelled_folder_without_good_or_defective_is_refused_before_work(
        keep, message, small_checkpoint, synthetic_dataset, tmp_path, capsys):
    folder = tmp_path / "parts"
    for label in keep:
        shutil.copytree(synthetic_dataset / "test" / label, folder / label)
    out = tmp_path / "x.safetensors"
    assert gan_anomaly(["calibrate", "--model", str(small_checkpoint), "--data",
                        str(synthetic_dataset), "--labeled", str(folder), "--out", str(out),
                        "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "--labeled" in err and message in err and not out.exists()


def test_labelled_folder_must_not_be_the_evaluation_split(small_checkpoint, synthetic_dataset,
                                                          tmp_path, capsys):
    assert gan_anomaly(["calibrate", "--model", str(small_checkpoint), "--data",
                        str(synthetic_dataset), "--labeled", str(synthetic_dataset / "test"),
                        "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "which `eval` measures" in capsys.readouterr().err
