"""A plan being worked on within one executor call: its actions in a list indexed by
id, so journaling a transition updates one slot instead of rebuilding the plan; the
immutable ActionPlan is assembled only when someone looks at it."""

from __future__ import annotations

from collections.abc import Sequence

from opendrs.domain.action import Action, ActionPlan


class PlanDraft:
    __slots__ = ("_actions", "_header", "_plan", "_repeated", "_where", "id")

    def __init__(self, plan: ActionPlan) -> None:
        self._header = plan
        # A plain attribute: read for every journaled transition.
        self.id = plan.id
        self._actions = list(plan.actions)
        # The last position of each id, and when some id repeats (a plan should not
        # repeat one) every position of every id.
        self._where = {action.id: position for position, action in enumerate(self._actions)}
        self._repeated: dict[str, list[int]] = {}
        if len(self._where) != len(self._actions):
            for position, action in enumerate(self._actions):
                self._repeated.setdefault(action.id, []).append(position)
        self._plan: ActionPlan | None = plan

    @property
    def actions(self) -> Sequence[Action]:
        """The actions as they stand now (read only; changes go through `put`)."""
        return self._actions

    def action(self, action_id: str) -> Action:
        """The action with this id (the last one, should ids repeat)."""
        return self._actions[self._where[action_id]]

    def put(self, updated: Action) -> None:
        """Take `updated` in place of every action with its id (as
        ActionPlan.with_action does; an unknown id changes nothing)."""
        position = self._where.get(updated.id)
        if position is None:
            return
        if self._repeated:
            for each in self._repeated[updated.id]:
                self._actions[each] = updated
        else:
            self._actions[position] = updated
        self._plan = None

    def plan(self) -> ActionPlan:
        if self._plan is None:
            self._plan = self._header.with_actions(tuple(self._actions))
        return self._plan
