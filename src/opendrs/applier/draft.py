"""A plan being worked on within one executor call: its actions in a list indexed by
id, so journaling a transition updates one slot instead of rebuilding the plan; the
immutable ActionPlan is assembled only when someone looks at it."""

from __future__ import annotations

from collections.abc import Sequence

from opendrs.domain.action import Action, ActionPlan


class PlanDraft:
    def __init__(self, plan: ActionPlan) -> None:
        self._header = plan
        self._actions = list(plan.actions)
        self._where: dict[str, list[int]] = {}
        for position, action in enumerate(self._actions):
            self._where.setdefault(action.id, []).append(position)
        self._plan: ActionPlan | None = plan

    @property
    def id(self) -> str:
        return self._header.id

    @property
    def actions(self) -> Sequence[Action]:
        """The actions as they stand now (read only; changes go through `put`)."""
        return self._actions

    def action(self, action_id: str) -> Action:
        """The action with this id (the last one, should ids repeat)."""
        return self._actions[self._where[action_id][-1]]

    def put(self, updated: Action) -> None:
        """Take `updated` in place of every action with its id (as
        ActionPlan.with_action does; an unknown id changes nothing)."""
        for position in self._where.get(updated.id, ()):
            self._actions[position] = updated
            self._plan = None

    def plan(self) -> ActionPlan:
        if self._plan is None:
            self._plan = self._header.with_actions(tuple(self._actions))
        return self._plan
