"""followed_by patterns: one incident per key when `then` comes within `within`
after `first`, deduplicated, cleared with the first or after clear_for, kept
across snapshot/restore."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendrs.cep.engine import CepEngine
from opendrs.cep.pattern import FollowedBy, Occurrence
from opendrs.cep.rule import Missing, MissingPolicy, Op, ThresholdRule
from opendrs.cep.vector import VectorEngine
from opendrs.domain.alarm import AlarmState, AlarmTransition
from opendrs.domain.errors import InvalidInput
from opendrs.domain.sample import EntityKind, Sample, SampleType

ALARM, OK = AlarmState.ALARM, AlarmState.OK

LOW_RAM = ThresholdRule(name="low_ram", meter="memory.free.percent", threshold=15.0, op=Op.LT)
OOM = Occurrence(meter="instance.oom", op=Op.GT, threshold=0.0)


def incident(**changes: object) -> ThresholdRule:
    fields: dict[str, object] = {
        "name": "ram_then_oom",
        "meter": "",
        "threshold": 0.0,
        "followed_by": FollowedBy(Occurrence(rule="low_ram"), OOM, 300.0, ("host",)),
    }
    fields.update(changes)
    return ThresholdRule(**fields)  # type: ignore[arg-type]


def ram(host: str, value: float, time: float) -> Sample:
    return Sample("memory.free.percent", host, value, "%", SampleType.GAUGE, time, EntityKind.HOST)


def oom(vm: str, host: str, time: float) -> Sample:
    return Sample("instance.oom", vm, 1.0, "", SampleType.DELTA, time, EntityKind.INSTANCE, host)


def moves(transitions: tuple[AlarmTransition, ...], rule: str = "ram_then_oom") -> list[object]:
    return [(t.entity, t.current, t.time) for t in transitions if t.rule == rule]


def test_first_then_within_makes_one_incident_per_key() -> None:
    engine = CepEngine([LOW_RAM, incident()])
    assert moves(engine.process([ram("h1", 10, 0), ram("h2", 10, 0)]).transitions) == []
    out = engine.process([oom("vm1", "h1", 100), oom("vm2", "h1", 100), oom("vm3", "h3", 100)])
    assert moves(out.transitions) == [("h1", ALARM, 100.0)]
    fired = next(t for t in out.transitions if t.rule == "ram_then_oom")
    assert dict(fired.labels) == {"host": "h1"}
    assert fired.details["first_at"] == 0.0
    # A repeat while the incident is on is the same incident.
    assert moves(engine.process([oom("vm1", "h1", 200)]).transitions) == []


def test_then_too_late_or_before_first_is_nothing() -> None:
    engine = CepEngine([LOW_RAM, incident()])
    engine.process([oom("vm1", "h1", 0)])
    engine.process([ram("h1", 10, 10)])
    assert moves(engine.process([oom("vm1", "h1", 311)]).transitions) == []
    assert moves(engine.process([oom("vm1", "h1", 400)]).transitions) == []


def test_first_and_then_in_one_batch_are_ordered_by_time() -> None:
    engine = CepEngine([LOW_RAM, incident()])
    out = engine.process([oom("vm1", "h1", 5), ram("h1", 10, 0)])
    assert moves(out.transitions) == [("h1", ALARM, 5.0)]


def test_the_incident_clears_with_its_first_and_a_later_then_needs_a_new_first() -> None:
    engine = CepEngine([LOW_RAM, incident()])
    engine.process([ram("h1", 10, 0)])
    engine.process([oom("vm1", "h1", 60)])
    out = engine.process([ram("h1", 50, 120)])
    assert moves(out.transitions) == [("h1", OK, 120.0)]
    assert moves(engine.process([oom("vm1", "h1", 130)]).transitions) == []
    engine.process([ram("h1", 10, 200)])
    assert moves(engine.process([oom("vm1", "h1", 210)]).transitions) == [("h1", ALARM, 210.0)]


def test_clear_for_ends_an_incident_without_new_thens() -> None:
    engine = CepEngine([LOW_RAM, incident(clear_for=600.0)])
    engine.process([ram("h1", 10, 0)])
    engine.process([oom("vm1", "h1", 60)])
    engine.process([oom("vm1", "h1", 120)])  # extends the incident
    engine.process([ram("h1", 10, 500)])  # the RAM alarm goes on firing
    assert moves(engine.advance(700.0).transitions) == []
    assert moves(engine.advance(720.0).transitions) == [("h1", OK, 720.0)]


def test_a_meter_condition_can_be_first_and_idle_keys_are_forgotten() -> None:
    first = Occurrence(meter="memory.free.percent", op=Op.LT, threshold=15.0)
    rule = incident(followed_by=FollowedBy(first, OOM, 300.0, ("host",)), clear_for=60.0, name="p")
    engine = CepEngine([rule])
    engine.process([ram("h1", 10, 0)])
    assert moves(engine.process([oom("vm1", "h1", 30)]).transitions, "p") == [("h1", ALARM, 30.0)]
    assert moves(engine.advance(90.0).transitions, "p") == [("h1", OK, 90.0)]
    engine.advance(400.0)  # the first has expired: nothing is kept for h1
    assert engine.states() == []
    assert ("p", "h1") in engine.changes()[1]


def test_snapshot_restore_keeps_a_pending_first_and_an_incident() -> None:
    rules = [LOW_RAM, incident()]
    engine = CepEngine(rules)
    engine.process([ram("h1", 10, 0)])
    again = CepEngine(rules)
    again.restore(json.loads(json.dumps(engine.snapshot())))
    out = again.process([oom("vm1", "h1", 100)])
    assert moves(out.transitions) == [("h1", ALARM, 100.0)]
    third = CepEngine(rules)
    third.restore(json.loads(json.dumps(again.snapshot())))
    assert moves(third.process([oom("vm1", "h1", 150)]).transitions) == []  # no re-notify
    assert moves(third.process([ram("h1", 50, 200)]).transitions) == [("h1", OK, 200.0)]


def test_unknown_or_chained_references_are_refused() -> None:
    with pytest.raises(InvalidInput, match="no known rule 'low_ram'") as caught:
        CepEngine([incident()])
    assert caught.value.field == "followed_by.first.rule"
    chained = incident(
        name="chain",
        followed_by=FollowedBy(Occurrence(rule="ram_then_oom"), OOM, 60.0, ("host",)),
    )
    with pytest.raises(InvalidInput, match="do not chain"):
        CepEngine([LOW_RAM, incident(), chained])


def test_invalid_patterns_are_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        incident(for_seconds=60.0)
    assert caught.value.field == "followed_by"
    meter_first = FollowedBy(OOM, OOM, 60.0, ("host",))
    with pytest.raises(InvalidInput) as caught:
        incident(followed_by=meter_first)
    assert caught.value.field == "clear_for"
    with pytest.raises(InvalidInput) as caught:
        FollowedBy(Occurrence(rule="a"), OOM, 0.0, ("host",))
    assert caught.value.field == "followed_by.within"
    with pytest.raises(InvalidInput) as caught:
        Occurrence(rule="a", meter="b")
    with pytest.raises(InvalidInput, match="a rule needs a meter"):
        ThresholdRule(name="x", meter="", threshold=1.0)


def test_the_vector_engine_refuses_patterns() -> None:
    with pytest.raises(InvalidInput, match="followed_by"):
        VectorEngine([incident()])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["ram", "oom"]), st.sampled_from(["h1", "h2"]), st.floats(0, 30)),
        min_size=1,
        max_size=30,
    ),
    st.integers(0, 30),
)
def test_a_restart_anywhere_changes_no_incident(
    steps: list[tuple[str, str, float]], cut: int
) -> None:
    """Restoring a snapshot mid-stream gives the same transitions as never stopping."""
    rules = [LOW_RAM, incident(clear_for=240.0)]
    samples = [
        ram(host, value, 40.0 * i) if kind == "ram" else oom("vm-" + host, host, 40.0 * i)
        for i, (kind, host, value) in enumerate(steps)
    ]

    def run(engine: CepEngine, batch: list[Sample]) -> list[tuple[str, str, str, float]]:
        out: list[tuple[str, str, str, float]] = []
        for sample in batch:
            for t in engine.process([sample]).transitions + engine.advance(sample.time).transitions:
                out.append((t.rule, t.entity, t.current.value, t.time))
        return out

    whole = run(CepEngine(rules), samples)
    first = CepEngine(rules)
    before = run(first, samples[:cut])
    second = CepEngine(rules)
    second.restore(json.loads(json.dumps(first.snapshot())))
    assert before + run(second, samples[cut:]) == whole


VM_HOT = ThresholdRule(
    name="vm_hot", meter="cpu_util", threshold=90.0, missing=Missing(MissingPolicy.NO_DATA, 60.0)
)


def hot_then_oom() -> ThresholdRule:
    return incident(
        name="hot_then_oom",
        followed_by=FollowedBy(Occurrence(rule="vm_hot"), OOM, 300.0, ("host",)),
    )


def cpu(vm: str, value: float, time: float) -> Sample:
    return Sample("cpu_util", vm, value, "%", SampleType.GAUGE, time, EntityKind.INSTANCE, "h1")


@pytest.mark.parametrize("together", [False, True])
def test_the_incident_ends_when_the_last_first_alarm_on_the_key_stops(together: bool) -> None:
    engine = CepEngine([VM_HOT, hot_then_oom()])
    engine.process([cpu("vm1", 95, 0), cpu("vm2", 95, 5)])
    assert moves(engine.process([oom("vm3", "h1", 10)]).transitions, "hot_then_oom") == [
        ("h1", ALARM, 10)
    ]
    if together:  # both alarms end in one batch, vm1's first: the incident ends with vm2's
        out = engine.advance(200.0)
    else:
        assert moves(engine.process([cpu("vm1", 20, 20)]).transitions, "hot_then_oom") == []
        out = engine.process([cpu("vm2", 20, 65)])
    assert moves(out.transitions, "hot_then_oom") == [("h1", OK, 65)]
