"""What CEP workers hand each other: news survives its JSON form exactly, a
bad handoff is refused naming the field, keys are placed with their entity,
and a spread engine hands over what it does not judge and absorbs the rest
as a single engine would."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opendrs.cep.engine import CepEngine
from opendrs.cep.handoff import (
    GroupNews,
    HalfNews,
    MemberNews,
    News,
    PatternNews,
    news_from_dict,
    news_to_dict,
    placement,
)
from opendrs.cep.rule import Aggregate, ThresholdRule
from opendrs.domain.errors import InvalidInput
from opendrs.domain.sample import EntityKind, Sample, SampleType

names = st.text(alphabet="abcxyz019_-", min_size=1, max_size=6)
labels = st.dictionaries(names, names, min_size=1, max_size=3)
times = st.floats(0, 1e10, allow_nan=False)
values = st.none() | st.floats(-1e6, 1e6, allow_nan=False)

members = st.builds(MemberNews, names, labels, times, values, st.none() | times)
groups = st.builds(GroupNews, names, labels, st.tuples(members), st.none() | times)
halves = st.builds(HalfNews, times, st.integers(0, 2), labels, values, names, names, st.booleans())
patterns = st.builds(PatternNews, names, labels, st.lists(halves, max_size=3).map(tuple))


@given(st.lists(groups, max_size=3), st.lists(patterns, max_size=3))
def test_news_survives_json(told_groups: list[GroupNews], told_patterns: list[PatternNews]) -> None:
    news: list[News] = [*told_groups, *told_patterns]
    back = news_from_dict(json.loads(json.dumps(news_to_dict(news))))
    assert back == news


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"groups": [{"rule": "r", "group": {"a": "b"}, "members": [{"name": "m"}]}]}, "groups.0"),
        ({"groups": [{"rule": "", "group": {}, "members": []}]}, "groups.0"),
        ({"patterns": [{"rule": "p", "key": "h1", "halves": []}]}, "patterns.0"),
        ({"patterns": [{"rule": "p", "key": {}, "halves": [{"time": "soon"}]}]}, "patterns.0"),
    ],
)
def test_a_bad_handoff_names_what_is_wrong(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        news_from_dict(data)
    assert raised.value.field == field


def test_keys_are_placed_with_the_entity_they_name() -> None:
    assert placement({"host": "h1"}) == "h1"
    assert placement({"instance": "vm1", "host": "h1"}) == "vm1"
    assert placement({"tier": "gold"}) == "{tier=gold}"
    assert placement({"tier": "gold"}) != placement({"tier": "silver"})


TIER = ThresholdRule(
    name="tier_max",
    meter="cpu_util",
    threshold=90.0,
    group_by=("tier",),
    group_aggregate=Aggregate.MAX,
)


def cpu(vm: str, value: float, time: float) -> Sample:
    return Sample(
        "cpu_util", vm, value, "%", SampleType.GAUGE, time, EntityKind.INSTANCE, "h1",
        {"tier": "gold"},
    )  # fmt: skip


def test_a_spread_engine_hands_over_the_groups_it_does_not_judge() -> None:
    single = CepEngine([TIER])
    member_side = CepEngine([TIER])
    member_side.spread(lambda place: False)  # judges nothing itself
    judge = CepEngine([TIER])
    judge.spread(lambda place: True)
    for batch in ([cpu("vm1", 50, 10), cpu("vm2", 95, 10)], [cpu("vm2", 20, 20)]):
        expected = single.process(batch)
        handed = member_side.process(batch)
        assert handed.transitions == ()
        assert [type(n) for n in handed.handoffs] == [GroupNews]
        judged = judge.absorb(handed.handoffs)
        assert judged.transitions == expected.transitions
    assert judge.states() == single.states()
    assert member_side.states() == []
    # the member side keeps the members' windows, saved apart from any group
    saved = member_side.snapshot()
    assert sorted(e["entity"] for e in saved) == ["member:vm1{tier=gold}", "member:vm2{tier=gold}"]
    again = CepEngine([TIER])
    again.spread(lambda place: False)
    assert again.restore(saved) == 2
    # a single engine keeps members inside its groups: saved members mean nothing to it
    assert CepEngine([TIER]).restore(saved) == 0
