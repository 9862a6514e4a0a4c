"""Group rules: one alarm per group of series, from the members' latest values;
silent members drop out; state survives snapshot/restore and rule edits."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendrs.cep.engine import CepEngine
from opendrs.cep.rule import Aggregate, Missing, Op, ThresholdRule
from opendrs.cep.vector import VectorEngine
from opendrs.domain.alarm import AlarmState
from opendrs.domain.errors import InvalidInput
from opendrs.domain.sample import EntityKind, Sample, SampleType

ALARM, OK, NO_DATA = AlarmState.ALARM, AlarmState.OK, AlarmState.NO_DATA


def cpu(host: str, value: float, time: float, aggregate: str = "gold") -> Sample:
    return Sample(
        "cpu.util",
        host,
        value,
        "%",
        SampleType.GAUGE,
        time,
        EntityKind.HOST,
        labels={"aggregate": aggregate},
    )


def group_rule(**changes: object) -> ThresholdRule:
    fields: dict[str, object] = {
        "name": "agg_cpu",
        "meter": "cpu.util",
        "threshold": 80.0,
        "op": Op.GT,
        "group_by": ("aggregate",),
        "group_aggregate": Aggregate.MEAN,
        "missing": Missing(after=300.0),
    }
    fields.update(changes)
    return ThresholdRule(**fields)  # type: ignore[arg-type]


def test_one_alarm_per_group_keyed_by_the_group_labels() -> None:
    engine = CepEngine([group_rule()])
    out = engine.process([cpu("h1", 95, 0), cpu("h2", 75, 0), cpu("h3", 10, 0, "silver")])
    fired = [t for t in out.transitions if t.current == ALARM]
    assert [(t.entity, dict(t.labels)) for t in fired] == [
        ("aggregate=gold", {"aggregate": "gold"})
    ]
    assert fired[0].value == pytest.approx(85.0)
    assert fired[0].details["values"] == {"h1{aggregate=gold}": 95.0, "h2{aggregate=gold}": 75.0}
    assert {a.entity: a.state for a in engine.states()} == {
        "aggregate=gold": ALARM,
        "aggregate=silver": OK,
    }


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        (Aggregate.MEAN, 50.0),
        (Aggregate.MAX, 90.0),
        (Aggregate.MIN, 10.0),
        (Aggregate.SUM, 100.0),
        (Aggregate.COUNT, 2.0),
    ],
)
def test_group_aggregates(how: Aggregate, expected: float) -> None:
    engine = CepEngine([group_rule(group_aggregate=how, op=Op.GE, threshold=-1.0)])
    out = engine.process([cpu("h1", 90, 0), cpu("h2", 10, 0)])
    assert [t.value for t in out.transitions] == [pytest.approx(expected)]


def test_a_member_value_is_its_own_window_aggregate() -> None:
    engine = CepEngine([group_rule(aggregate=Aggregate.MAX, window=120.0, threshold=90.0)])
    engine.process([cpu("h1", 95, 0), cpu("h2", 95, 0)])
    out = engine.process([cpu("h1", 10, 60), cpu("h2", 10, 60)])
    assert engine.states()[0].state == ALARM  # max over 2m still 95
    assert out.transitions == ()
    engine.process([cpu("h1", 10, 120), cpu("h2", 10, 120)])
    assert engine.states()[0].state == OK


def test_a_silent_member_drops_out_and_the_group_is_judged_again() -> None:
    engine = CepEngine([group_rule()])
    engine.process([cpu("h1", 95, 0), cpu("h2", 20, 0)])
    assert engine.states()[0].state == OK
    for t in (60.0, 120.0, 180.0, 240.0):
        engine.process([cpu("h1", 95, t)])
    out = engine.advance(300.0)  # h2 silent since 0: gone at 300
    assert [(t.current, t.time, t.value) for t in out.transitions] == [(ALARM, 300.0, 95.0)]
    out = engine.advance(540.0 + 1)  # h1 silent since 240: the group has no member
    assert [(t.current, t.time) for t in out.transitions] == [(NO_DATA, 540.0)]


def test_stale_markers_of_every_member_make_the_group_absent() -> None:
    engine = CepEngine([group_rule()])
    engine.process([cpu("h1", 95, 0), cpu("h2", 95, 0)])
    engine.end_series("cpu.util", {"host": "h1", "aggregate": "gold"}, 30.0)
    assert engine.advance(40.0).transitions == ()  # h2 alone keeps it firing
    assert list(engine.snapshot()[0]["members"]) == ["h2{aggregate=gold}"]
    engine.end_series("cpu.util", {"host": "h2", "aggregate": "gold"}, 50.0)
    out = engine.advance(60.0)
    assert [t.current for t in out.transitions] == [NO_DATA]


def test_series_without_the_group_label_are_not_members() -> None:
    engine = CepEngine([group_rule()])
    bare = Sample("cpu.util", "h1", 99.0, "%", SampleType.GAUGE, 0.0, EntityKind.HOST)
    assert engine.process([bare]).transitions == ()
    assert engine.states() == []


def test_retiring_a_member_re_judges_and_retiring_the_last_forgets_the_group() -> None:
    engine = CepEngine([group_rule()])
    engine.process([cpu("h1", 95, 0), cpu("h2", 20, 0)])
    out = engine.retire("h2", 10.0)
    assert [(t.current, t.value) for t in out.transitions] == [(ALARM, 95.0)]
    out = engine.retire("h1", 20.0)
    assert [t.current for t in out.transitions] == [OK]
    assert engine.states() == []


def test_snapshot_restore_keeps_members_and_timers() -> None:
    rule = group_rule(for_seconds=120.0)
    engine = CepEngine([rule])
    engine.process([cpu("h1", 95, 0), cpu("h2", 85, 0)])
    saved = json.loads(json.dumps(engine.snapshot()))
    again = CepEngine([rule])
    assert again.restore(saved) == 1
    # h1 still counts after the restart: 70 + 95 -> 82.5, fired at 120 since 0.
    out = again.process([cpu("h2", 70, 120)])
    assert [(t.current, t.time, t.value) for t in out.transitions] == [(ALARM, 120.0, 82.5)]


def test_an_edit_keeps_group_state_and_a_kind_change_drops_it() -> None:
    engine = CepEngine([group_rule()])
    engine.process([cpu("h1", 95, 0)])
    engine.set_rules([group_rule(threshold=90.0)])
    assert [a.state for a in engine.states()] == [ALARM]
    engine.set_rules([group_rule(group_by=("host",))])
    assert engine.states() == []
    assert engine.changes()[1] == [("agg_cpu", "aggregate=gold")]


def test_invalid_group_rules_are_named() -> None:
    with pytest.raises(InvalidInput, match="group_aggregate") as caught:
        group_rule(group_aggregate=Aggregate.RATE)
    assert caught.value.field == "group_aggregate"
    with pytest.raises(InvalidInput) as caught:
        group_rule(group_by=("aggregate", "aggregate"))
    assert caught.value.field == "group_by"


def test_the_vector_engine_refuses_group_rules() -> None:
    with pytest.raises(InvalidInput, match="group_by"):
        VectorEngine([group_rule()])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["h1", "h2", "h3"]), st.floats(0, 100)), min_size=1, max_size=30
    ),
    st.integers(0, 30),
)
def test_a_restart_anywhere_changes_nothing(steps: list[tuple[str, float]], cut: int) -> None:
    """Restoring a snapshot mid-stream gives the same transitions as never stopping."""
    rule = group_rule(
        aggregate=Aggregate.MEAN,
        window=90.0,
        group_aggregate=Aggregate.MAX,
        for_seconds=60.0,
        clear_threshold=70.0,
        clear_for=60.0,
    )
    samples = [cpu(host, value, 30.0 * i) for i, (host, value) in enumerate(steps)]

    def run(engine: CepEngine, batch: list[Sample]) -> list[tuple[str, float, float | None]]:
        out = []
        for sample in batch:
            moved = engine.process([sample]).transitions + engine.advance(sample.time).transitions
            out += [(t.current.value, t.time, t.value) for t in moved]
        return out

    whole = run(CepEngine([rule]), samples)
    first = CepEngine([rule])
    before = run(first, samples[:cut])
    second = CepEngine([rule])
    second.restore(json.loads(json.dumps(first.snapshot())))
    assert before + run(second, samples[cut:]) == whole


@pytest.mark.parametrize("noticed", [False, True])
def test_a_member_back_after_leaving_starts_with_an_empty_window(noticed: bool) -> None:
    rule = group_rule(
        aggregate=Aggregate.MAX, window=600.0, group_aggregate=Aggregate.MAX,
        missing=Missing(after=60.0),
    )  # fmt: skip
    engine = CepEngine([rule])
    engine.process([cpu("h1", 95.0, 0.0), cpu("h2", 10.0, 0.0)])
    if noticed:
        engine.advance(100.0)  # h1 and h2 leave the group here...
    # ...or not yet: either way h1's 95 from before it left does not count
    out = engine.process([cpu("h1", 20.0, 120.0), cpu("h2", 10.0, 120.0)])
    assert [(t.current, t.value) for t in out.transitions] == [(OK, 20.0)]
