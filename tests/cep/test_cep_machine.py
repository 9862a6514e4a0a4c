"""The alarm state machine through the engine: windows and aggregates, `for`
durations, N-of-M, hysteresis with clear_for, missing-data policies, flapping,
retirement of deleted entities, reloads and restarts that keep state."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendrs.cep.engine import CepEngine
from opendrs.cep.rule import (
    ActionKind,
    Aggregate,
    Flapping,
    Missing,
    MissingPolicy,
    Op,
    RuleAction,
    ThresholdRule,
)
from opendrs.cep.series import series_labels, series_name
from opendrs.cep.window import Window
from opendrs.domain.alarm import AlarmState, AlarmTransition
from opendrs.domain.errors import InvalidInput
from opendrs.domain.sample import EntityKind, Sample, SampleType

OK, PENDING, ALARM = AlarmState.OK, AlarmState.PENDING, AlarmState.ALARM
NO_DATA, FLAPPING = AlarmState.NO_DATA, AlarmState.FLAPPING


def sample(value: float, time: float, entity: str = "vm1", **labels: str) -> Sample:
    return Sample(
        "cpu_util", entity, value, "%", SampleType.GAUGE, time, EntityKind.INSTANCE, "h1", labels
    )


def rule(**fields: Any) -> ThresholdRule:
    base: dict[str, Any] = {"name": "r", "meter": "cpu_util", "threshold": 80.0}
    return ThresholdRule(**(base | fields))


def feed(
    engine: CepEngine, values: Sequence[float | None], step: float = 60.0
) -> list[AlarmTransition]:
    """Sample i at i*step (None: no sample), advancing time at every step."""
    out: list[AlarmTransition] = []
    for i, value in enumerate(values):
        now = i * step
        if value is not None:
            out += engine.process([sample(value, now)]).transitions
        out += engine.advance(now).transitions
    return out


def moves(transitions: Sequence[AlarmTransition]) -> list[tuple[float, str]]:
    return [(t.time, t.current.value) for t in transitions]


# --- windows --------------------------------------------------------------


@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40),
    st.sampled_from([0.0, 30.0, 60.0, 150.0, 600.0]),
    st.sampled_from(list(Aggregate)),
)
def test_a_window_holds_exactly_the_samples_of_the_last_w_seconds(
    values: list[float], length: float, aggregate: Aggregate
) -> None:
    window = Window(length)
    points = [(i * 30.0, v) for i, v in enumerate(values)]
    for t, v in points:
        window.add(t, v)
    now = points[-1][0]
    inside = [v for t, v in points if now - length < t <= now] if length else [values[-1]]
    assert window.values() == inside
    got = window.reduce(aggregate)
    expected: float | None = {
        Aggregate.LAST: inside[-1],
        Aggregate.MEAN: sum(inside) / len(inside),
        Aggregate.MAX: max(inside),
        Aggregate.MIN: min(inside),
        Aggregate.SUM: sum(inside),
        Aggregate.COUNT: float(len(inside)),
    }.get(aggregate)
    if aggregate == Aggregate.RATE:
        if len(inside) < 2:
            assert got is None
        else:
            assert got is not None
    else:
        assert got == pytest.approx(expected)


def test_rate_adds_counter_resets_instead_of_going_negative() -> None:
    window = Window(600)
    for t, v in [(0, 100.0), (60, 160.0), (120, 10.0), (180, 70.0)]:
        window.add(t, v)
    # 60 + 10 (reset: counts from zero) + 60 over 180 s
    assert window.reduce(Aggregate.RATE) == pytest.approx(130 / 180)


def test_mean_over_a_window_fires_on_the_average_not_a_spike() -> None:
    engine = CepEngine([rule(aggregate="mean", window=180.0)])
    # (t-180, t] holds three samples: at 240 the mean is (10+95+95)/3 = 66.7, at 300 it is 95
    out = feed(engine, [10, 10, 10, 95, 95, 95])
    assert moves(out) == [(300.0, "alarm")]


# --- for / n_of_m / clear -------------------------------------------------


def test_for_duration_is_counted_from_the_first_breaching_sample() -> None:
    engine = CepEngine([rule(for_seconds=120.0)])
    out = feed(engine, [90, 90, 90, 90])
    assert moves(out) == [(0.0, "pending"), (120.0, "alarm")]
    assert not out[0].notified and out[1].notified


def test_a_good_sample_restarts_the_for_timer() -> None:
    engine = CepEngine([rule(for_seconds=120.0)])
    out = feed(engine, [90, 90, 50, 90, 90, 90])
    assert moves(out) == [(0.0, "pending"), (120.0, "ok"), (180.0, "pending"), (300.0, "alarm")]
    assert not any(t.notified for t in out[:3])  # ok after pending is not news


def test_n_of_m_fires_on_n_breaching_among_the_last_m() -> None:
    engine = CepEngine([rule(n_of_m=(3, 5))])
    out = feed(engine, [90, 50, 90, 50, 90])
    assert moves(out) == [
        (0.0, "pending"),
        (60.0, "ok"),
        (120.0, "pending"),
        (180.0, "ok"),
        (240.0, "alarm"),
    ]


def test_hysteresis_and_clear_for_keep_a_recovering_alarm_firing() -> None:
    engine = CepEngine([rule(clear_threshold=70.0, clear_for=120.0)])
    out = feed(engine, [90, 75, 60, 60, 90, 60, 60, 60])
    # 75 holds (above 70); 60 at 120 and 180 is 60 s only; 90 resets; 60 from 300 to 420
    assert moves(out) == [(0.0, "alarm"), (420.0, "ok")]
    assert out[1].notified and "cleared" in out[1].reason


def test_clear_threshold_on_the_wrong_side_is_refused() -> None:
    with pytest.raises(InvalidInput, match="clear_threshold") as caught:
        rule(op=Op.LT, threshold=15.0, clear_threshold=10.0)
    assert caught.value.field == "clear_threshold"


def test_for_and_n_of_m_together_are_refused() -> None:
    with pytest.raises(InvalidInput, match="either") as caught:
        rule(for_seconds=60.0, n_of_m=(2, 3))
    assert caught.value.field == "n_of_m"


# --- missing data ---------------------------------------------------------


def test_no_data_after_the_silence_and_back_to_ok_notified() -> None:
    engine = CepEngine([rule(missing=Missing(MissingPolicy.NO_DATA, 180.0))])
    out = feed(engine, [50, None, None, None, None, 50])
    assert moves(out) == [(180.0, "no_data"), (300.0, "ok")]
    assert all(t.notified for t in out)


def test_keep_changes_nothing_on_silence() -> None:
    engine = CepEngine([rule(missing=Missing(MissingPolicy.KEEP, 60.0))])
    out = feed(engine, [90, None, None, None, None])
    assert moves(out) == [(0.0, "alarm")]


def test_breaching_absence_fires_after_for() -> None:
    engine = CepEngine([rule(for_seconds=120.0, missing=Missing(MissingPolicy.BREACHING, 60.0))])
    out = feed(engine, [50, None, None, None, None])
    assert moves(out) == [(60.0, "pending"), (180.0, "alarm")]


def test_a_stale_marker_is_absence_at_once() -> None:
    engine = CepEngine([rule()])
    engine.process([sample(50, 0)])
    engine.end_series("cpu_util", {"instance": "vm1", "host": "h1"}, 60.0)
    assert moves(engine.advance(60.0).transitions) == [(60.0, "no_data")]


def test_a_deleted_entity_retires_its_alarms_instead_of_going_no_data() -> None:
    engine = CepEngine([rule(missing=Missing(MissingPolicy.NO_DATA, 60.0))])
    engine.process([sample(90, 0), sample(90, 0, entity="vm2")])
    out = engine.retire("vm1", 30.0)
    assert moves(out.transitions) == [(30.0, "ok")]
    assert out.transitions[0].notified and "deleted" in out.transitions[0].reason
    later = engine.advance(600.0)
    assert [t.entity for t in later.transitions] == ["vm2"]  # vm1 is gone for good


# --- flapping -------------------------------------------------------------


def test_flapping_holds_notifications_until_it_settles() -> None:
    engine = CepEngine([rule(flapping=Flapping(3, 300.0))])
    out = feed(engine, [90, 50, 90, 50, 90, 50, 50, 50, 50, 50, 50, 50])
    shown = moves(out)
    assert shown[:4] == [(0.0, "alarm"), (60.0, "ok"), (120.0, "alarm"), (180.0, "flapping")]
    assert [t.notified for t in out[:4]] == [True, True, True, False]
    # last change underneath at 300; settles 300 s later, to ok, which is news (alarm was last)
    assert shown[4:] == [(600.0, "ok")]
    assert out[4].notified


def test_settling_into_the_state_last_announced_is_not_notified_again() -> None:
    engine = CepEngine([rule(flapping=Flapping(3, 300.0))])
    out = feed(engine, [90, 50, 90, 50, 90, 90, 90, 90, 90, 90, 90])
    assert moves(out)[-1] == (540.0, "alarm")
    assert not out[-1].notified  # alarm was the last thing announced


# --- labels, actions, reload, restart -------------------------------------


def test_an_alarm_carries_series_labels_plus_rule_labels_and_its_own_key() -> None:
    engine = CepEngine([rule(labels={"team": "ops"}, selector={"interface": "tap0"})])
    out = engine.process([sample(90, 0, interface="tap0"), sample(90, 0, interface="tap1")])
    [t] = out.transitions
    assert dict(t.labels) == {"instance": "vm1", "host": "h1", "interface": "tap0", "team": "ops"}
    assert t.entity == "vm1{interface=tap0}"
    assert t.rule_version and t.details["values"] == [90]


def test_series_names_are_unique_per_series() -> None:
    a = series_labels(sample(1, 0, interface="tap0"))
    b = series_labels(sample(1, 0, interface="tap1"))
    assert series_name(a) != series_name(b)
    assert series_name(series_labels(sample(1, 0))) == "vm1"


def test_webhook_and_event_actions_follow_their_states() -> None:
    actions = (
        RuleAction(kind=ActionKind.WEBHOOK, url="http://127.0.0.1:1/hook"),
        RuleAction(kind=ActionKind.EVENT, goal="overload_relief"),
    )
    engine = CepEngine([rule(actions=actions)])
    fired = engine.process([sample(90, 0)])
    cleared = engine.process([sample(10, 60)])
    assert [d.url for d in fired.deliveries] == ["http://127.0.0.1:1/hook"]
    assert [d.transition.current for d in cleared.deliveries] == [OK]
    assert len(fired.events) == 1 and not cleared.events
    assert fired.events[0].data["scope"] == ["h1"]


def test_a_webhook_needs_an_http_url() -> None:
    with pytest.raises(InvalidInput, match="http") as caught:
        RuleAction(kind=ActionKind.WEBHOOK, url="ftp://x")
    assert caught.value.field == "url"


def test_editing_a_threshold_keeps_the_hold_timer_and_the_window() -> None:
    engine = CepEngine([rule(for_seconds=180.0, threshold=80.0)])
    feed(engine, [90, 90])
    engine.set_rules([rule(for_seconds=180.0, threshold=85.0)])
    out = engine.process([sample(90, 120), sample(90, 180)]).transitions
    # pending since 0 is kept: alarm at 180, not 300
    assert moves(out) == [(180.0, "alarm")]
    assert out[0].rule_version == engine.rules[0].version != rule(for_seconds=180.0).version


def _run(
    engine: CepEngine, values: Sequence[float | None], start: int
) -> list[tuple[float, str, bool]]:
    out: list[AlarmTransition] = []
    for i, value in enumerate(values, start):
        now = i * 60.0
        if value is not None:
            out += engine.process([sample(value, now)]).transitions
        out += engine.advance(now).transitions
    return [(t.time, t.current.value, t.notified) for t in out]


RULE_SHAPES: list[dict[str, Any]] = [
    {"for_seconds": 120.0, "clear_threshold": 60.0, "clear_for": 60.0},
    {"n_of_m": (2, 3), "aggregate": "mean", "window": 120.0},
    {"flapping": Flapping(2, 300.0), "missing": Missing(MissingPolicy.NO_DATA, 120.0)},
    {"missing": Missing(MissingPolicy.BREACHING, 120.0), "for_seconds": 60.0},
]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(RULE_SHAPES),
    st.lists(st.one_of(st.none(), st.sampled_from([10.0, 70.0, 90.0])), min_size=2, max_size=30),
    st.integers(min_value=1, max_value=29),
)
def test_a_restart_from_a_snapshot_changes_nothing_that_follows(
    shape: dict[str, Any], values: list[float | None], cut: int
) -> None:
    cut = min(cut, len(values) - 1)
    straight = CepEngine([rule(**shape)])
    expected = _run(straight, values, 0)
    first = CepEngine([rule(**shape)])
    before = _run(first, values[:cut], 0)
    saved = json.loads(json.dumps(first.snapshot()))  # what the store keeps
    second = CepEngine([rule(**shape)])
    second.restore(saved)
    after = _run(second, values[cut:], cut)
    assert before + after == expected


def test_snapshot_only_dirty_lists_what_changed_since() -> None:
    engine = CepEngine([rule(for_seconds=600.0)])
    engine.process([sample(10, 0)])
    assert len(engine.snapshot(only_dirty=True)) == 1
    assert engine.snapshot(only_dirty=True) == []
    engine.process([sample(90, 60)])
    assert [s["base"] for s in engine.snapshot(only_dirty=True)] == ["pending"]
