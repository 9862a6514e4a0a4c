"""split_plan's shortcut for plans without dependencies cuts the parts the grouping
of linked actions cuts, and linked actions always share a part."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from opendrs.domain.action import Action, ActionPlan, ActionType
from opendrs.services.simulation import _grouped, _parts, split_plan


@st.composite
def plans(draw: st.DrawFn) -> ActionPlan:
    count = draw(st.integers(0, 40))
    linked = draw(st.booleans())
    actions: list[Action] = []
    for i in range(count):
        parents: tuple[str, ...] = ()
        if linked and actions and draw(st.booleans()):
            parents = (draw(st.sampled_from(actions)).id,)
        actions.append(Action(ActionType.MIGRATE, {"instance": f"vm{i}"}, parents, id=f"a{i}"))
    return ActionPlan("audit", tuple(actions))


def contents(parts: list[ActionPlan]) -> list[tuple[Action, ...]]:
    return [p.actions for p in parts]


@settings(max_examples=300, deadline=None)
@given(plans(), st.integers(0, 20))
def test_parts_are_those_of_the_grouping(plan: ActionPlan, size: int) -> None:
    parts = split_plan(plan, size)
    assert contents(parts) == contents(_parts(plan, _grouped(plan, size)))
    # Every action in exactly one part.
    assert sorted(a.id for p in parts for a in p.actions) == sorted(a.id for a in plan.actions)
    where = {a.id: k for k, p in enumerate(parts) for a in p.actions}
    for action in plan.actions:
        assert all(where[p] == where[action.id] for p in action.parents)
    if len(parts) == 1:
        assert parts[0] is plan


def test_independent_actions_go_in_runs_of_the_size() -> None:
    actions = tuple(
        Action(ActionType.MIGRATE, {"instance": f"vm{i}"}, id=f"a{i}") for i in range(35)
    )
    parts = split_plan(ActionPlan("audit", actions), 16)
    assert [len(p.actions) for p in parts] == [16, 16, 3]
    assert all(p.audit_id == "audit" for p in parts)
