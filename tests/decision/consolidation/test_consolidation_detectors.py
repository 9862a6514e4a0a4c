"""Overload detectors as CloudSim computes them: THR, MAD, IQR and LR with fallbacks."""

from __future__ import annotations

import numpy as np
from consolidation_builders import snapshot
from hypothesis import given
from hypothesis import strategies as st

from opendrs.decision.consolidation.detectors import (
    InterquartileRange,
    LocalRegression,
    MedianAbsoluteDeviation,
    Threshold,
    regression_weights,
)
from opendrs.decision.consolidation.load import Load, trimmed_lengths

HOSTS = np.array([0])


def one_host(demand: float, history: list[float]) -> Load:
    # One VM whose MIPS equal the host's, so host utilisation = VM utilisation.
    return Load(snapshot([1000.0], [(0, 1000.0, demand, 512.0)], [history]))


def test_threshold_is_strictly_above() -> None:
    assert not Threshold(0.8).overloaded(one_host(800.0, []), HOSTS)[0]
    assert Threshold(0.8).overloaded(one_host(801.0, []), HOSTS)[0]


def test_robust_detectors_fall_back_to_thr_07_below_12_points() -> None:
    short = [0.5] * 11
    for detector in (MedianAbsoluteDeviation(2.5), InterquartileRange(1.5)):
        assert detector.overloaded(one_host(710.0, short), HOSTS)[0]
        assert not detector.overloaded(one_host(690.0, short), HOSTS)[0]


def test_zero_tail_does_not_count_as_history() -> None:
    history = [0.5] * 11 + [0.0] * 5
    assert trimmed_lengths(one_host(0.5, history).snapshot.vm_history)[0] == 11
    # Still the fallback: 0.69 is below THR 0.7 even though MAD of the points is 0.
    assert not MedianAbsoluteDeviation(2.5).overloaded(one_host(690.0, history), HOSTS)[0]


def test_mad_threshold_uses_unscaled_median_absolute_deviation() -> None:
    history = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.5, 0.5, 0.5]
    median = np.median(history)
    mad = float(np.median(np.abs(np.array(history) - median)))
    threshold = 1.0 - 2.5 * mad
    detector = MedianAbsoluteDeviation(2.5)
    assert detector.overloaded(one_host((threshold + 0.01) * 1000, history), HOSTS)[0]
    assert not detector.overloaded(one_host((threshold - 0.01) * 1000, history), HOSTS)[0]


def test_iqr_takes_java_rounded_positions() -> None:
    history = [float(v) / 100 for v in range(1, 13)]  # n = 12
    # positions round(0.25·13) = round(3.25) = 3 and round(9.75) = 10, 1-based
    iqr = history[9] - history[2]
    threshold = 1.0 - 1.5 * iqr
    detector = InterquartileRange(1.5)
    assert detector.overloaded(one_host((threshold + 0.005) * 1000, history), HOSTS)[0]
    assert not detector.overloaded(one_host((threshold - 0.005) * 1000, history), HOSTS)[0]


@given(st.lists(st.floats(0.0, 1.0), min_size=10, max_size=10), st.integers(1, 3))
def test_regression_weights_equal_an_ols_fit(newest_first: list[float], ahead: int) -> None:
    y = np.array(newest_first[::-1])
    slope, intercept = np.polyfit(np.arange(1, 11, dtype=float), y, 1)
    expected = intercept + slope * (10 + ahead)
    got = float(np.array(newest_first) @ regression_weights(10, 10 + ahead))
    assert abs(got - expected) < 1e-9


def test_lr_flags_a_rising_host_by_its_prediction_and_ge() -> None:
    rising = [0.8 - 0.05 * j for j in range(10)]  # newest first: 0.8 now, rising 5 %/step
    load = one_host(800.0, rising)
    prediction = LocalRegression(1.2).predicted(load, HOSTS)[0]
    assert abs(prediction - 0.85) < 1e-9  # one step ahead (migration < 300 s)
    assert LocalRegression(1.2).overloaded(load, HOSTS)[0]
    assert LocalRegression(1.0 / 0.85).overloaded(load, HOSTS)[0]  # ≥, not >
    assert not LocalRegression(1.1).overloaded(load, HOSTS)[0]


def test_lr_falls_back_below_10_points() -> None:
    load = one_host(710.0, [0.1] * 9)
    assert LocalRegression(1.2).overloaded(load, HOSTS)[0]
    assert not LocalRegression(1.2).overloaded(one_host(690.0, [0.1] * 9), HOSTS)[0]


def test_overloaded_with_adds_the_vm_history_and_demand() -> None:
    s = snapshot(
        [1000.0, 1000.0],
        [(0, 1000.0, 400.0, 512.0), (1, 500.0, 300.0, 512.0)],
        [[0.4] * 10, [0.6] * 10],
    )
    load = Load(s)
    # Host 0 with VM 1 added: history 0.4 + 0.6·500/1000 = 0.7 flat → prediction 0.7.
    assert not LocalRegression(1.2).overloaded_with(load, np.array([0]), 1)[0]
    assert LocalRegression(1.5).overloaded_with(load, np.array([0]), 1)[0]
    assert Threshold(0.65).overloaded_with(load, np.array([0]), 1)[0]
