"""Hand-built action plans for applier tests, and a loop that runs one to its end."""

from __future__ import annotations

from opendrs.applier import PlanExecutor
from opendrs.domain.action import (
    FINAL_PLAN_STATES,
    Action,
    ActionPlan,
    ActionType,
    PlanLimits,
)
from opendrs.domain.ports import PlanRepository


def migrate(instance: str, source: str, destination: str, *parents: Action) -> Action:
    return Action(
        type=ActionType.MIGRATE,
        parameters={
            "instance": instance,
            "source": source,
            "destination": destination,
            "live": True,
            "memory_mb": 2048,
        },
        parents=tuple(p.id for p in parents),
        id=f"m-{instance}",
    )


def host_state(node: str, state: str, *parents: Action) -> Action:
    return Action(
        type=ActionType.CHANGE_NODE_STATE,
        parameters={"node": node, "state": state, "reason": "test"},
        parents=tuple(p.id for p in parents),
        id=f"h-{node}-{state}",
    )


def saved_plan(
    repo: PlanRepository, *actions: Action, limits: PlanLimits | None = None, at: float = 0.0
) -> ActionPlan:
    plan = ActionPlan(
        audit_id="audit", actions=actions, limits=limits or PlanLimits(), created_at=at
    )
    repo.save_plan(plan)
    return repo.get_plan(plan.id)


def run_to_end(executor: PlanExecutor, plan_id: str, rounds: int = 200) -> ActionPlan:
    for _ in range(rounds):
        plan = executor.advance(plan_id)
        if plan.state in FINAL_PLAN_STATES:
            return plan
    raise AssertionError(f"plan {plan_id} did not finish in {rounds} rounds")
