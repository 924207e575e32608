"""The per-part decision of the example sorting client (ROS-free core)."""

import math

import pytest

from gan_anomaly_ros.sorting import (INSPECTED, INVALID_INPUT, NO_PART, SKIPPED, Decision,
                                     PartSorter, SortingConfig, Verdict)

HERE, THERE = (0.0, 0.0, 0.5), (0.1, 0.0, 0.5)


def run(verdicts, **config):
    sorter = PartSorter(SortingConfig(**config))
    return [outcome and outcome.decision for outcome in map(sorter.update, verdicts)]


def good(at=HERE):
    return Verdict(INSPECTED, False, at)


def bad(at=HERE):
    return Verdict(INSPECTED, True, at)


def test_accepts_only_after_enough_good_frames_in_a_row():
    assert run([good(), good(), good()]) == [None, None, Decision.ACCEPT]
    # One anomalous frame restarts the count: hysteresis.
    assert run([good(), good(), bad(), good(), good(), good()])[-1] == Decision.ACCEPT
    assert Decision.ACCEPT not in run([good(), good(), bad(), good(), good()])


def test_rejects_after_consecutive_anomalous_frames_and_decides_once_per_part():
    assert run([bad(), bad(), bad(), good(), good(), good()]) == \
        [None, Decision.REJECT, None, None, None, None]


def test_frames_not_inspected_never_accept_and_end_in_retry():
    invalid = Verdict(INVALID_INPUT, True)
    outcomes = run([good(), good(), invalid, good()] + [invalid] * 5)
    assert Decision.ACCEPT not in outcomes
    assert outcomes[-1] == Decision.RETRY
    # Even an is_anomaly false on a frame that was not inspected does not count as good.
    assert run([Verdict(INVALID_INPUT, False)] * 3 + [Verdict(99, False)] * 3,
               retry_after=10) == [None] * 6


def test_skipped_frames_are_no_evidence_either_way():
    skipped = Verdict(SKIPPED, True)
    # Between good frames a skipped one neither breaks the run nor counts in it...
    assert run([good(), skipped, good(), skipped, good()])[-1] == Decision.ACCEPT
    assert Decision.ACCEPT not in run([good(), good(), skipped, skipped])
    # ... never accepts on its own, and is not a failed inspection (no RETRY).
    assert run([Verdict(SKIPPED, False)] * 8) == [None] * 8


def test_no_part_or_another_part_starts_again():
    assert run([good(), good(), Verdict(NO_PART, True), good()]) == [None] * 4
    assert run([good(), good(), good(THERE), good(THERE), good(THERE)])[-1] == Decision.ACCEPT
    assert Decision.ACCEPT not in run([good(), good(), good(THERE)])


def test_parts_without_a_centroid_are_one_part_until_the_cell_empties():
    nowhere = (math.nan,) * 3
    assert run([good(nowhere)] * 3)[-1] == Decision.ACCEPT


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="accept_after"):
        SortingConfig(accept_after=0)
