"""PlanDraft, the executor's working copy of a plan: any sequence of updates leaves
it with the plan ActionPlan.with_action would build, ids repeated or not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from opendrs.applier.draft import PlanDraft
from opendrs.domain.action import Action, ActionPlan, ActionType

IDS = ("a", "b", "c", "d")


def _action(action_id: str, tag: int) -> Action:
    return Action(ActionType.NOP, {"tag": tag}, id=action_id)


@given(
    st.lists(st.sampled_from(IDS), min_size=0, max_size=6),
    st.lists(st.sampled_from((*IDS, "unknown")), max_size=8),
)
def test_updates_build_the_plan_with_action_builds(ids: list[str], updates: list[str]) -> None:
    plan = ActionPlan(
        audit_id="audit", actions=tuple(_action(i, n) for n, i in enumerate(ids)), id="p"
    )
    draft = PlanDraft(plan)
    assert draft.id == "p"
    assert draft.plan() is plan
    expected = plan
    for n, action_id in enumerate(updates, start=100):
        updated = _action(action_id, n)
        draft.put(updated)
        expected = expected.with_action(updated)
        assert list(draft.actions) == list(expected.actions)
        for known in set(ids):
            # The last action with the id, should ids repeat.
            assert draft.action(known) == [a for a in expected.actions if a.id == known][-1]
    assert draft.plan() == expected
