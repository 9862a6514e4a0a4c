"""promtool's expanding notation, series selectors and durations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opendrs.domain.errors import InvalidInput
from opendrs.rulefiles.cases import parse_series
from opendrs.rulefiles.durations import format_duration, parse_duration
from opendrs.rulefiles.notation import Marker, expand

M, S = Marker.MISSING, Marker.STALE


@pytest.mark.parametrize(
    ("text", "points"),
    [
        ("-2+4x3", [-2.0, 2.0, 6.0, 10.0]),
        ("1 _x3 stale", [1.0, M, M, M, S]),
        ("20 14x3 19x1", [20.0, 14.0, 14.0, 14.0, 14.0, 19.0, 19.0]),
        ("10-2x2", [10.0, 8.0, 6.0]),
        ("1e8 2.5e9x1", [1e8, 2.5e9, 2.5e9]),
        ("_ 3", [M, 3.0]),
        ("", []),
    ],
)
def test_expanding_notation(text: str, points: list[object]) -> None:
    assert expand(text) == points


@given(st.integers(-50, 50), st.integers(-5, 5), st.integers(0, 20))
def test_a_plus_b_x_n_gives_n_plus_one_values(a: int, b: int, n: int) -> None:
    sign = "+" if b >= 0 else "-"
    assert expand(f"{a}{sign}{abs(b)}x{n}") == [float(a + i * b) for i in range(n + 1)]


def test_a_bad_token_is_named() -> None:
    with pytest.raises(InvalidInput, match="'12x'") as caught:
        expand("1 12x 3", source="t.yaml line 4", field="input_series.0.values")
    assert caught.value.field == "input_series.0.values"


def test_series_selector() -> None:
    assert parse_series('network.outgoing.bytes.rate{instance="vm1", host="h1"}') == (
        "network.outgoing.bytes.rate",
        {"instance": "vm1", "host": "h1"},
    )
    assert parse_series("cpu_util") == ("cpu_util", {})
    with pytest.raises(InvalidInput, match="labels"):
        parse_series("cpu_util{host=h1}")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("500ms", 0.5), (45, 45.0), ("2.5", 2.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5 minutes", "m5", "-3s", "", True, [1]])
def test_bad_durations_say_what_a_duration_is(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@given(st.integers(0, 10**6))
def test_format_duration_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
