"""/v1/action_plans: list and read plans with their actions; start (approve) and
cancel one. The API only records the operator's wish; the applier acts on it: it
starts PENDING plans when their hosts are free and winds CANCELLING plans down."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from opendrs.api.context import Repos
from opendrs.api.errors import ERROR_RESPONSES
from opendrs.api.query import reject_unknown_query
from opendrs.api.schemas import ActionPlanOut
from opendrs.domain.action import ActionState, PlanState


def _now() -> float:
    """When the API stamps actions it cancels itself (the applier uses its own clock)."""
    return time.time()


router = APIRouter(
    prefix="/v1/action_plans",
    tags=["action plans"],
    responses=ERROR_RESPONSES,
    dependencies=[Depends(reject_unknown_query)],
)


@router.get("", response_model=list[ActionPlanOut], summary="Action plans, newest first")
def list_plans(
    repos: Repos,
    state: Annotated[
        list[PlanState] | None, Query(description="only plans in these states (repeatable)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many")] = 100,
) -> list[ActionPlanOut]:
    return [ActionPlanOut.of(p) for p in repos.list_plans(states=state, limit=limit)]


@router.get("/{plan_id}", response_model=ActionPlanOut, summary="One action plan by id")
def get_plan(plan_id: str, repos: Repos) -> ActionPlanOut:
    return ActionPlanOut.of(repos.get_plan(plan_id))


@router.post(
    "/{plan_id}/start",
    response_model=ActionPlanOut,
    summary="Approve a RECOMMENDED plan: it becomes PENDING and the applier starts it",
    responses={409: {"description": "the plan is not RECOMMENDED"}},
)
def start_plan(plan_id: str, repos: Repos) -> ActionPlanOut:
    plan = repos.get_plan(plan_id)
    plan.moved_to(PlanState.PENDING)  # raises InvalidTransition (409) when not allowed
    repos.set_plan_state(plan_id, PlanState.PENDING, "approved by an operator")
    return ActionPlanOut.of(repos.get_plan(plan_id))


@router.post(
    "/{plan_id}/cancel",
    response_model=ActionPlanOut,
    summary="Cancel a plan: at once if it has not started, else no new action starts "
    "and the applier ends it CANCELLED once the running ones finish",
    responses={409: {"description": "the plan has already ended"}},
)
def cancel_plan(plan_id: str, repos: Repos, now: Annotated[float, Depends(_now)]) -> ActionPlanOut:
    plan = repos.get_plan(plan_id)
    if plan.state in (PlanState.RECOMMENDED, PlanState.PENDING):
        plan.moved_to(PlanState.CANCELLED)
        for action in plan.actions:
            if action.state == ActionState.PENDING:
                repos.journal_action(action.moved_to(ActionState.CANCELLED, now, "cancelled"))
        repos.set_plan_state(plan_id, PlanState.CANCELLED, "cancelled before it started")
    elif plan.state != PlanState.CANCELLING:
        plan.moved_to(PlanState.CANCELLING)
        repos.set_plan_state(plan_id, PlanState.CANCELLING, "cancel requested by an operator")
    return ActionPlanOut.of(repos.get_plan(plan_id))
