"""Fusing several models' verdicts on one frame (fusion.py, ROS-free): fail-safe statuses,
any model's anomaly, the largest calibrated logit."""

import math

import pytest

from gan_anomaly_ros.fusion import ModelVerdict, calibrated_logit, fuse
from gan_anomaly_ros.sorting import INSPECTED, INVALID_INPUT, NO_PART, SKIPPED

SOURCES = ("colour", "geometry")


def verdict(source, status=INSPECTED, p=0.2, detail=""):
    return ModelVerdict(source, status, status == INSPECTED and p > 0.5, p, detail)


def test_a_part_is_anomalous_when_any_model_says_so():
    fused = fuse([verdict("colour", p=0.2), verdict("geometry", p=0.9)], SOURCES)
    assert fused.status == INSPECTED and fused.is_anomaly and fused.deciding == "geometry"
    assert fused.score == pytest.approx(math.log(0.9 / 0.1))
    assert fused.score_normalized == 0.9 and fused.detail == ""
    good = fuse([verdict("colour", p=0.3), verdict("geometry", p=0.1)], SOURCES)
    assert good.status == INSPECTED and not good.is_anomaly and good.score < 0
    assert good.deciding == "colour"


def test_a_frame_some_model_did_not_inspect_is_never_good():
    cases = [
        ((NO_PART, NO_PART), NO_PART),                  # the models agree: the cell is empty
        ((INVALID_INPUT, INVALID_INPUT), INVALID_INPUT),
        ((SKIPPED, SKIPPED), SKIPPED),
        ((INSPECTED, SKIPPED), SKIPPED),                # one was busy: not looked at
        ((INSPECTED, NO_PART), INVALID_INPUT),          # they disagree: cannot tell
        ((NO_PART, SKIPPED), INVALID_INPUT),
        ((INSPECTED, INVALID_INPUT), INVALID_INPUT),
    ]
    for (first, second), expected in cases:
        fused = fuse([verdict("colour", first, 0.1, "why colour"),
                      verdict("geometry", second, 0.1)], SOURCES)
        assert fused.status == expected, (first, second)
        assert fused.is_anomaly and math.isnan(fused.score)
    fused = fuse([verdict("colour", INVALID_INPUT, detail="too few depth pixels"),
                  verdict("geometry")], SOURCES)
    assert fused.detail == "colour: INVALID_INPUT (too few depth pixels)"


def test_a_model_that_never_answered_makes_the_frame_invalid():
    fused = fuse([verdict("colour", p=0.01)], SOURCES)
    assert fused.status == INVALID_INPUT and fused.is_anomaly
    assert fused.detail == "no verdict from geometry"


def test_the_logit_stays_finite_at_saturation():
    assert math.isfinite(calibrated_logit(1.0)) and math.isfinite(calibrated_logit(0.0))
    assert calibrated_logit(0.5) == 0.0
