"""GET /v1/action_plans and /v1/action_plans/{id}, each plan with its actions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from opendrs.api.context import Repos
from opendrs.api.errors import ERROR_RESPONSES
from opendrs.api.query import reject_unknown_query
from opendrs.api.schemas import ActionPlanOut
from opendrs.domain.action import PlanState

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
