"""CepEngine: for_samples, hysteresis, transitions only, pending never notified,
rule actions once per alarm, rule reloads that keep state."""

import math
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opendrs.cep.engine import CepEngine
from opendrs.cep.rule import ActionKind, Op, RuleAction, ThresholdRule
from opendrs.domain.alarm import AlarmState
from opendrs.domain.errors import InvalidInput
from opendrs.domain.sample import EntityKind, Sample, SampleType

OK, PENDING, ALARM = AlarmState.OK, AlarmState.PENDING, AlarmState.ALARM


def vm_sample(value: float, time: float, entity: str = "vm-1", host: str = "node-1") -> Sample:
    return Sample(
        meter="cpu_util",
        entity=entity,
        value=value,
        unit="%",
        type=SampleType.GAUGE,
        time=time,
        kind=EntityKind.INSTANCE,
        host=host,
    )


def host_sample(value: float, time: float, entity: str = "node-1") -> Sample:
    return Sample(
        meter="compute.node.cpu.percent",
        entity=entity,
        value=value,
        unit="%",
        type=SampleType.GAUGE,
        time=time,
        kind=EntityKind.HOST,
    )


def series(values: Sequence[float], start: float = 0.0) -> list[Sample]:
    return [vm_sample(v, start + 60.0 * i) for i, v in enumerate(values)]


class Feed:
    """Feeds one sample per batch, each later than the last, and lists the moves."""

    def __init__(self, engine: CepEngine) -> None:
        self.engine = engine
        self.time = 0.0

    def __call__(self, values: Sequence[float]) -> list[tuple[AlarmState, AlarmState]]:
        out = []
        for value in values:
            self.time += 60.0
            batch = self.engine.process([vm_sample(value, self.time)])
            out += [(t.previous, t.current) for t in batch.transitions]
        return out


def cpu_rule(**kwargs: object) -> ThresholdRule:
    args: dict[str, object] = {"name": "vm_cpu_high", "meter": "cpu_util", "threshold": 80.0}
    args.update(kwargs)
    return ThresholdRule(**args)  # type: ignore[arg-type]


def test_for_samples_goes_through_pending_then_alarm() -> None:
    engine = CepEngine([cpu_rule(for_samples=3)])
    out = engine.process(series([85, 85]))
    assert [(t.previous, t.current) for t in out.transitions] == [(OK, PENDING)]
    out = engine.process([vm_sample(90, 200.0)])
    assert [(t.previous, t.current) for t in out.transitions] == [(PENDING, ALARM)]
    alarm = out.transitions[0]
    assert alarm.notified
    assert alarm.value == 90
    assert alarm.time == 200.0
    assert "3 of the last 3 samples" in alarm.reason and "90" in alarm.reason


def test_a_break_in_the_streak_starts_the_count_again() -> None:
    feed = Feed(CepEngine([cpu_rule(for_samples=3)]))
    assert feed([85, 85, 50, 85, 85]) == [(OK, PENDING), (PENDING, OK), (OK, PENDING)]
    assert feed([85]) == [(PENDING, ALARM)]


def test_pending_and_its_return_to_ok_are_never_notified() -> None:
    engine = CepEngine([cpu_rule(for_samples=2)])
    out = engine.process(series([85, 10]))
    assert [(t.previous, t.current) for t in out.transitions] == [(OK, PENDING), (PENDING, OK)]
    assert not any(t.notified for t in out.transitions)


def test_for_samples_one_fires_at_once() -> None:
    assert Feed(CepEngine([cpu_rule()]))([81]) == [(OK, ALARM)]


def test_transitions_only_never_a_repeat() -> None:
    engine = CepEngine([cpu_rule(for_samples=2)])
    out = engine.process(series([90] * 20))
    assert [(t.previous, t.current) for t in out.transitions] == [(OK, PENDING), (PENDING, ALARM)]
    assert engine.process([vm_sample(95, 5000.0)]).transitions == ()


def test_hysteresis_clears_only_past_the_clear_threshold() -> None:
    engine = CepEngine([cpu_rule(clear_threshold=70.0)])
    feed = Feed(engine)
    assert feed([85]) == [(OK, ALARM)]
    assert feed([75, 79, 71]) == []
    out = engine.process([vm_sample(69, feed.time + 60.0)])
    assert [(t.previous, t.current) for t in out.transitions] == [(ALARM, OK)]
    assert out.transitions[0].notified
    assert "70" in out.transitions[0].reason


def test_without_hysteresis_the_alarm_clears_below_the_threshold() -> None:
    assert Feed(CepEngine([cpu_rule()]))([85, 75]) == [(OK, ALARM), (ALARM, OK)]


def test_hysteresis_for_a_low_watermark() -> None:
    rule = ThresholdRule(
        name="low_ram", meter="cpu_util", threshold=15.0, op=Op.LT, clear_threshold=20.0
    )
    feed = Feed(CepEngine([rule]))
    assert feed([30, 10, 18, 19.9]) == [(OK, ALARM)]
    assert feed([20]) == [(ALARM, OK)]


def test_clear_samples_needs_consecutive_clearing_values() -> None:
    feed = Feed(CepEngine([cpu_rule(clear_threshold=70.0, clear_samples=2)]))
    assert feed([90, 60, 75, 60]) == [(OK, ALARM)]
    assert feed([60]) == [(ALARM, OK)]


def test_each_entity_has_its_own_state() -> None:
    engine = CepEngine([cpu_rule(for_samples=2)])
    out = engine.process(
        [
            vm_sample(90, 0.0, entity="a"),
            vm_sample(90, 0.0, entity="b"),
            vm_sample(90, 60.0, entity="a"),
            vm_sample(10, 60.0, entity="b"),
        ]
    )
    assert [(t.entity, t.current) for t in out.transitions] == [
        ("a", PENDING),
        ("b", PENDING),
        ("a", ALARM),
        ("b", OK),
    ]
    assert {(a.entity, a.state) for a in engine.states()} == {("a", ALARM), ("b", OK)}


def test_samples_of_other_meters_are_not_evaluated() -> None:
    engine = CepEngine([cpu_rule()])
    out = engine.process([host_sample(99, 0.0)])
    assert out.transitions == ()
    assert engine.states() == []


def test_stale_duplicate_and_nan_samples_are_ignored() -> None:
    engine = CepEngine([cpu_rule(for_samples=2)])
    out = engine.process(
        [vm_sample(90, 100.0), vm_sample(90, 100.0), vm_sample(90, 50.0), vm_sample(math.nan, 200)]
    )
    assert [t.current for t in out.transitions] == [PENDING]
    assert out.ignored == 3


def event_rule() -> ThresholdRule:
    return ThresholdRule(
        name="host_overload",
        meter="compute.node.cpu.percent",
        threshold=80.0,
        op=Op.GT,
        clear_threshold=70.0,
        for_samples=2,
        actions=(
            RuleAction(
                kind=ActionKind.EVENT,
                goal="overload_relief",
                strategy="overload_relief",
                parameters={"target": 70},
            ),
            RuleAction(kind=ActionKind.LOG),
        ),
    )


def test_event_action_emitted_once_per_alarm() -> None:
    engine = CepEngine([event_rule()])
    out = engine.process([host_sample(v, 60.0 * i) for i, v in enumerate([85, 90, 95, 99])])
    assert len(out.events) == 1
    event = out.events[0]
    assert event.type == "opendrs.audit.requested"
    assert event.subject == "node-1"
    assert event.time == 60.0
    assert event.data["goal"] == "overload_relief"
    assert event.data["strategy"] == "overload_relief"
    assert event.data["parameters"] == {"target": 70}
    assert event.data["scope"] == ["node-1"]
    assert event.data["rule"] == "host_overload"
    assert event.data["value"] == 90
    assert len(out.log_lines) == 1 and "host_overload" in out.log_lines[0]

    calm = engine.process([host_sample(60, 1000.0)])
    assert calm.events == () and [t.current for t in calm.transitions] == [OK]
    again = engine.process([host_sample(90, 1060.0), host_sample(91, 1120.0)])
    assert len(again.events) == 1
    assert again.events[0].id != event.id


def test_event_scope_is_the_host_of_an_instance_sample() -> None:
    rule = cpu_rule(actions=(RuleAction(kind=ActionKind.EVENT, goal="overload_relief"),))
    out = CepEngine([rule]).process([vm_sample(95, 0.0, entity="vm-7", host="node-3")])
    assert out.events[0].data["scope"] == ["node-3"]
    assert out.events[0].subject == "vm-7"


def test_event_ids_are_stable_for_the_same_transition() -> None:
    first = CepEngine([event_rule()]).process([host_sample(90, 0), host_sample(90, 60)])
    second = CepEngine([event_rule()]).process([host_sample(90, 0), host_sample(90, 60)])
    assert first.events[0].id == second.events[0].id


def test_set_rules_keeps_state_of_kept_names_and_drops_the_rest() -> None:
    keep = cpu_rule(name="keep", clear_threshold=70.0)
    drop = cpu_rule(name="drop")
    engine = CepEngine([keep, drop])
    engine.process([vm_sample(90, 0.0)])
    assert {a.rule: a.state for a in engine.states()} == {"keep": ALARM, "drop": ALARM}

    engine.set_rules([cpu_rule(name="keep", threshold=95.0, clear_threshold=50.0)])
    assert {a.rule: a.state for a in engine.states()} == {"keep": ALARM}
    # Still firing: no repeat, and the new clear threshold now applies.
    assert engine.process([vm_sample(60, 60.0)]).transitions == ()
    out = engine.process([vm_sample(40, 120.0)])
    assert [(t.rule, t.current) for t in out.transitions] == [("keep", OK)]


def test_duplicate_rule_names_are_refused() -> None:
    with pytest.raises(InvalidInput, match="duplicate rule name 'vm_cpu_high'"):
        CepEngine([cpu_rule(), cpu_rule()])


@given(
    st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=60),
    st.integers(min_value=1, max_value=4),
    st.one_of(st.none(), st.floats(min_value=40, max_value=80, allow_nan=False)),
)
def test_transition_chain_is_consistent(
    values: list[float], for_samples: int, clear: float | None
) -> None:
    rule = cpu_rule(for_samples=for_samples, clear_threshold=clear)
    engine = CepEngine([rule])
    state = OK
    history: list[float] = []
    for index, value in enumerate(values):
        history.append(value)
        out = engine.process([vm_sample(value, float(index))])
        assert len(out.transitions) <= 1
        for t in out.transitions:
            assert t.previous == state and t.current != state
            if t.current == ALARM:
                # Only after for_samples consecutive breaches.
                assert len(history) >= for_samples
                assert all(rule.breaches(v) for v in history[-for_samples:])
            if t.previous == ALARM:
                assert not rule.holds(value)
            state = t.current
        if state == ALARM and not out.transitions:
            assert rule.holds(value)
    assert [a.state for a in engine.states()] == ([state] if values else [])
