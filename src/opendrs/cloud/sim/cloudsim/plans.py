"""An in-memory PlanRepository for simulated runs: journaled actions are kept by id
and a plan is assembled only when asked for, so a round of hundreds of migrations
journals in constant time per transition; finished plans can be dropped."""

from __future__ import annotations

from collections.abc import Sequence

from opendrs.domain.action import Action, ActionPlan, PlanState
from opendrs.domain.errors import NotFound


class MemoryPlans:
    def __init__(self) -> None:
        self._plans: dict[str, ActionPlan] = {}
        self._actions: dict[str, dict[str, Action]] = {}
        # Plans as last assembled, until a write changes them: the executor reads
        # every running plan each round, most of them unchanged since the last read.
        self._assembled: dict[str, ActionPlan] = {}
        self.journalled = 0

    def save_plan(self, plan: ActionPlan) -> None:
        actions = {a.id: a.in_plan(plan.id) for a in plan.actions}
        self._plans[plan.id] = plan.with_actions(())
        self._actions[plan.id] = actions
        self._assembled.pop(plan.id, None)

    def get_plan(self, plan_id: str) -> ActionPlan:
        try:
            plan = self._plans[plan_id]
        except KeyError:
            raise NotFound("action plan", plan_id) from None
        assembled = self._assembled.get(plan_id)
        if assembled is None:
            assembled = plan.with_actions(tuple(self._actions[plan_id].values()))
            self._assembled[plan_id] = assembled
        return assembled

    def list_plans(
        self, states: Sequence[PlanState] | None = None, limit: int = 100
    ) -> list[ActionPlan]:
        found = [
            self.get_plan(p.id) for p in self._plans.values() if states is None or p.state in states
        ]
        return sorted(found, key=lambda p: -p.created_at)[:limit]

    def set_plan_state(self, plan_id: str, state: PlanState, message: str = "") -> None:
        plan = self._plans.get(plan_id)
        if plan is None:
            raise NotFound("action plan", plan_id)
        self._assembled.pop(plan_id, None)
        self._plans[plan_id] = ActionPlan(
            plan.audit_id,
            plan.actions,
            state,
            plan.efficacy,
            message or plan.message,
            plan.created_at,
            plan.id,
            plan.limits,
        )

    def journal_action(self, action: Action) -> None:
        actions = self._actions.get(action.plan_id)
        if actions is None:
            raise NotFound("action plan", action.plan_id)
        self.journalled += 1
        actions[action.id] = action
        self._assembled.pop(action.plan_id, None)

    def forget(self, plan_id: str) -> None:
        self._plans.pop(plan_id, None)
        self._actions.pop(plan_id, None)
        self._assembled.pop(plan_id, None)
