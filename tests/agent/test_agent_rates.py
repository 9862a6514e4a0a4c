"""Rates from cumulative counters, with reset detection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opendrs.agent.rates import RateTable, cpu_util


def test_first_observation_gives_no_rate_then_rates_follow() -> None:
    table = RateTable()
    assert table.rate("vm", "cpu", 100.0, 0.0) is None
    assert table.rate("vm", "cpu", 400.0, 10.0) == pytest.approx(30.0)
    assert table.rate("vm", "cpu", 400.0, 20.0) == 0.0


def test_decrease_is_a_reset_that_gives_no_point_and_rebases() -> None:
    table = RateTable()
    table.rate("vm", "cpu", 1000.0, 0.0)
    assert table.rate("vm", "cpu", 10.0, 10.0) is None
    assert table.resets == 1
    assert table.rate("vm", "cpu", 30.0, 20.0) == pytest.approx(2.0)


def test_time_that_does_not_move_gives_no_point() -> None:
    table = RateTable()
    table.rate("vm", "cpu", 10.0, 5.0)
    assert table.rate("vm", "cpu", 20.0, 5.0) is None
    assert table.rate("vm", "cpu", 30.0, 4.0) is None


def test_series_and_entities_are_separate_and_can_be_forgotten() -> None:
    table = RateTable()
    table.rate("vm", "disk", 0.0, 0.0, series="vda")
    table.rate("vm", "disk", 0.0, 0.0, series="vdb")
    table.rate("other", "disk", 0.0, 0.0)
    assert table.rate("vm", "disk", 10.0, 1.0, series="vda") == 10.0
    assert table.rate("vm", "disk", 50.0, 1.0, series="vdb") == 50.0
    table.forget("vm")
    assert table.entities() == {"other"}
    assert table.rate("vm", "disk", 60.0, 2.0, series="vdb") is None


def test_cpu_util_is_percent_of_vcpus_capped() -> None:
    assert cpu_util(1e9, 2) == pytest.approx(50.0)
    assert cpu_util(5e9, 2) == 100.0
    assert cpu_util(-1.0, 1) == 0.0
    with pytest.raises(ValueError, match="vcpus"):
        cpu_util(1.0, 0)


_steps = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=1e15, allow_nan=False),
        st.floats(min_value=0, max_value=1e4, allow_nan=False),
    ),
    min_size=1,
    max_size=40,
)


@given(_steps)
def test_rates_are_never_negative_and_resets_give_no_point(
    steps: list[tuple[float, float]],
) -> None:
    table = RateTable()
    time = 0.0
    previous: tuple[float, float] | None = None
    for value, dt in steps:
        time += dt
        rate = table.rate("vm", "cpu", value, time)
        if previous is None or value < previous[0] or time <= previous[1]:
            assert rate is None
        else:
            assert rate is not None
            assert rate >= 0
            assert rate == pytest.approx((value - previous[0]) / (time - previous[1]))
        previous = (value, time)


@given(st.floats(min_value=-1e12, max_value=1e12), st.integers(min_value=1, max_value=64))
def test_cpu_util_stays_in_range(rate: float, vcpus: int) -> None:
    assert 0.0 <= cpu_util(rate, vcpus) <= 100.0
