"""The vectorised engine makes exactly the transitions the scalar engine makes,
for every rule shape it accepts, and refuses the rules it cannot run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendrs.cep.engine import CepEngine
from opendrs.cep.rule import Flapping, Missing, MissingPolicy, Op, ThresholdRule
from opendrs.cep.vector import VectorEngine
from opendrs.domain.alarm import AlarmTransition
from opendrs.domain.errors import InvalidInput
from opendrs.domain.sample import EntityKind, Sample, SampleType

ENTITIES = ["vm1", "vm2", "vm3"]


def sample(entity: str, value: float, time: float, meter: str = "cpu_util") -> Sample:
    return Sample(meter, entity, value, "%", SampleType.GAUGE, time, EntityKind.INSTANCE, "h1")


rule_shapes = st.fixed_dictionaries(
    {
        "op": st.sampled_from([Op.GT, Op.GE, Op.LT, Op.LE]),
        "aggregate": st.sampled_from(["last", "mean", "max", "min", "sum", "count"]),
        "window": st.sampled_from([0.0, 120.0, 300.0]),
        "timing": st.sampled_from(
            [{}, {"for_seconds": 120.0}, {"n_of_m": (2, 3)}, {"n_of_m": (3, 5)}]
        ),
        "clear": st.sampled_from(
            [{}, {"clear_for": 60.0}, {"clear_samples": 2}, {"hysteresis": True}]
        ),
        "missing": st.sampled_from([MissingPolicy.NO_DATA, MissingPolicy.KEEP]),
    }
)


def make_rule(name: str, shape: dict[str, Any]) -> ThresholdRule:
    op = shape["op"]
    threshold = 50.0
    clear = dict(shape["clear"])
    if clear.pop("hysteresis", False):
        clear["clear_threshold"] = 40.0 if op in (Op.GT, Op.GE) else 60.0
    return ThresholdRule(
        name=name,
        meter="cpu_util",
        threshold=threshold,
        op=op,
        aggregate=shape["aggregate"],
        window=shape["window"],
        missing=Missing(shape["missing"], 240.0),
        **shape["timing"],
        **clear,
    )


def key(t: AlarmTransition) -> tuple[Any, ...]:
    return (t.time, t.rule, t.entity, t.previous, t.current, t.value, t.notified)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(rule_shapes, min_size=1, max_size=4),
    st.lists(
        st.lists(
            st.one_of(st.none(), st.sampled_from([10.0, 45.0, 55.0, 90.0])), min_size=3, max_size=3
        ),
        min_size=1,
        max_size=25,
    ),
)
def test_vectorised_and_scalar_engines_agree(
    shapes: list[dict[str, Any]], steps: list[list[float | None]]
) -> None:
    rules = [make_rule(f"r{i}", shape) for i, shape in enumerate(shapes)]
    scalar = CepEngine(rules)
    vector = VectorEngine(rules, capacity=32)
    expected: list[AlarmTransition] = []
    got: list[AlarmTransition] = []
    for step, values in enumerate(steps):
        now = step * 60.0
        batch = [sample(e, v, now) for e, v in zip(ENTITIES, values, strict=True) if v is not None]
        expected += scalar.process(batch).transitions + scalar.advance(now).transitions
        got += vector.process_samples(batch) + vector.advance(now)
    assert sorted(map(key, got)) == sorted(map(key, expected))
    scalar_states = [(a.rule, a.entity, a.state) for a in scalar.states() if a.state.value != "ok"]
    assert [(a.rule, a.entity, a.state) for a in vector.states()] == sorted(scalar_states)


def test_several_samples_of_a_series_in_one_batch_are_taken_in_time_order() -> None:
    rule = ThresholdRule(name="r", meter="cpu_util", threshold=50.0, n_of_m=(2, 2))
    vector = VectorEngine([rule])
    sid = vector.register("cpu_util", {"instance": "vm1", "host": "h1"})
    out = vector.process(
        np.array([sid, sid, sid]), np.array([120.0, 0.0, 60.0]), np.array([90.0, 90.0, 10.0])
    )
    # in time order: 90 (pending), 10 (ok), 90 (pending): never 2 of the last 2
    assert [t.current.value for t in out] == ["pending", "ok", "pending"]
    assert vector.process(np.array([sid]), np.array([60.0]), np.array([90.0])) == []
    assert vector.ignored == 1  # older than what was seen


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"flapping": Flapping(3, 60.0)}, "flapping"),
        ({"missing": Missing(MissingPolicy.BREACHING, 60.0)}, "breaching"),
        ({"aggregate": "rate", "window": 60.0}, "rate"),
    ],
)
def test_rules_it_cannot_run_are_refused_with_the_reason(
    fields: dict[str, Any], words: str
) -> None:
    rule = ThresholdRule(name="r", meter="m", threshold=1.0, **fields)
    with pytest.raises(InvalidInput, match=words):
        VectorEngine([rule])
