"""/v1/audits: list and read audits, run one (`what_if` answers without storing
anything), schedule a continuous one and suspend, resume or cancel it, and approve
the plan a manual audit recommended. Optional app.state attributes:
strategy_registry, plan_limits, clock."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from opendrs.api.context import Repos
from opendrs.api.errors import ERROR_RESPONSES
from opendrs.api.query import reject_unknown_query
from opendrs.api.schemas import (
    ActionPlanOut,
    AuditChangeIn,
    AuditIn,
    AuditOut,
    AuditRunOut,
    WhatIfOut,
)
from opendrs.decision.audit import run_audit
from opendrs.decision.registry import StrategyRegistry
from opendrs.domain.action import PlanLimits, PlanState
from opendrs.domain.audit import ENDED_AUDIT_STATES, Audit, AuditState, AuditType
from opendrs.domain.clock import Clock
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidTransition, PlanningError
from opendrs.planner import build_plan
from opendrs.services.what_if import scope_entries, what_if_report

router = APIRouter(
    prefix="/v1/audits",
    tags=["audits"],
    responses=ERROR_RESPONSES,
    dependencies=[Depends(reject_unknown_query)],
)


def _registry(request: Request) -> StrategyRegistry:
    """The app's registry when wiring put one on app.state, else a discovered one."""
    found = getattr(request.app.state, "strategy_registry", None)
    if found is None:
        found = StrategyRegistry.discover()
        request.app.state.strategy_registry = found
    return cast(StrategyRegistry, found)


def _now(request: Request) -> float:
    """The app's clock (simulated in the demo)."""
    return float(cast(Clock, request.app.state.clock).now())


def _limits(request: Request) -> PlanLimits:
    found = getattr(request.app.state, "plan_limits", None)
    return found if isinstance(found, PlanLimits) else PlanLimits()


@router.get("", response_model=list[AuditOut], summary="Audits, newest first")
def list_audits(
    repos: Repos,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many")] = 100,
) -> list[AuditOut]:
    return [AuditOut.of(a) for a in repos.list_audits(limit=limit)]


@router.post(
    "",
    response_model=WhatIfOut | AuditRunOut,
    summary="Run an audit now (what_if: answer only, store nothing)",
    responses={409: {"description": "the proposal has no safe order"}},
)
def create_audit(body: AuditIn, repos: Repos, request: Request) -> Any:
    registry = _registry(request)
    audit = Audit(
        goal=body.goal,
        strategy=body.strategy,
        audit_type=body.audit_type,
        scope=scope_entries(body.scope, body.scope_aggregates, body.scope_zones),
        parameters=dict(body.parameters),
        auto_trigger=body.auto_trigger,
        trigger="api",
        created_at=_now(request),
    )
    # Refuse an unknown goal or strategy before anything is stored.
    registry.strategy_type(audit.goal, audit.strategy)
    cluster = Cluster.of(repos.list_hosts(), repos.list_instances(), repos.list_groups())
    if body.what_if:
        try:
            return what_if_report(cluster, audit, registry, _limits(request))
        except PlanningError as exc:
            raise HTTPException(409, str(exc)) from None
    if body.audit_type == AuditType.CONTINUOUS:
        return _schedule(audit, body, registry, repos)
    repos.save_audit(audit)
    audit = audit.moved_to(AuditState.ONGOING)
    try:
        solution = run_audit(audit, cluster, registry)
        plan = build_plan(solution, cluster, _limits(request), audit.id, audit.created_at)
    except Exception as exc:
        repos.save_audit(audit.moved_to(AuditState.FAILED, str(exc)))
        raise
    explanations = list(solution.explanations)
    if solution.empty:
        audit = audit.moved_to(
            AuditState.SUCCEEDED, "no action proposed: " + "; ".join(explanations)
        )
        repos.save_audit(audit)
        return AuditRunOut(audit=AuditOut.of(audit), plan_id=None, explanations=explanations)
    if body.auto_trigger:
        # Automatic mode: the plan is approved at birth; the applier starts PENDING plans.
        plan = plan.moved_to(PlanState.PENDING, "automatic audit")
    repos.save_plan(plan)
    audit = audit.moved_to(
        AuditState.SUCCEEDED,
        f"plan {plan.id} with {len(plan.actions)} actions ({plan.state.value})",
    )
    repos.save_audit(audit)
    return AuditRunOut(audit=AuditOut.of(audit), plan_id=plan.id, explanations=explanations)


def _schedule(audit: Audit, body: AuditIn, registry: StrategyRegistry, repos: Repos) -> AuditRunOut:
    """Store a continuous audit ONGOING, due at once: the optimization service runs
    it at its next tick and every `interval` seconds after that."""
    assert body.interval is not None  # AuditIn requires it of a continuous audit
    # Bad parameters are refused now rather than failing the first run.
    checked = dict(audit.parameters)
    if audit.scope:
        checked.setdefault("scope", list(audit.scope))
    registry.create(audit.goal, audit.strategy, checked)
    audit = replace(audit, interval=body.interval, next_run_at=audit.created_at)
    audit = audit.moved_to(AuditState.ONGOING, f"runs every {body.interval:g} s")
    repos.save_audit(audit)
    return AuditRunOut(audit=AuditOut.of(audit), plan_id=None, explanations=[])


@router.get("/{audit_id}", response_model=AuditOut, summary="One audit by id")
def get_audit(audit_id: str, repos: Repos) -> AuditOut:
    return AuditOut.of(repos.get_audit(audit_id))


_CHANGE_MESSAGES = {
    AuditState.SUSPENDED: "suspended by an operator",
    AuditState.ONGOING: "resumed by an operator",
    AuditState.CANCELLED: "cancelled by an operator",
}


@router.patch(
    "/{audit_id}",
    response_model=AuditOut,
    summary="Suspend (SUSPENDED), resume (ONGOING) or stop (CANCELLED) a continuous audit",
    responses={409: {"description": "the audit is not continuous, or not in a state to change so"}},
)
def change_audit(audit_id: str, body: AuditChangeIn, repos: Repos) -> AuditOut:
    audit = repos.get_audit(audit_id)
    if not audit.scheduled:
        raise HTTPException(
            409,
            f"audit {audit_id} is a {audit.audit_type.value} audit without a schedule: "
            "only a continuous audit made through the API can be suspended, resumed or "
            "cancelled",
        )
    wanted = AuditState(body.state)
    try:
        changed = repos.change_audit(audit_id, wanted, _CHANGE_MESSAGES[wanted])
    except InvalidTransition as exc:
        raise HTTPException(409, _refusal(audit_id, exc)) from None
    return AuditOut.of(changed)


def _refusal(audit_id: str, exc: InvalidTransition) -> str:
    current, wanted = AuditState(exc.current), AuditState(exc.wanted)
    if current == wanted:
        return f"audit {audit_id} is already {current.value}"
    if current in ENDED_AUDIT_STATES:
        return (
            f"audit {audit_id} is {current.value}: it has ended and cannot become "
            f"{wanted.value}; create a new continuous audit instead"
        )
    return f"audit {audit_id} cannot go from {current.value} to {wanted.value}"


@router.post(
    "/{audit_id}/approve",
    response_model=ActionPlanOut,
    summary="Approve the plan a manual audit recommended (it becomes PENDING)",
    responses={409: {"description": "the audit has no recommended plan"}},
)
def approve_audit(audit_id: str, repos: Repos) -> ActionPlanOut:
    repos.get_audit(audit_id)
    waiting = [
        p for p in repos.list_plans(states=[PlanState.RECOMMENDED]) if p.audit_id == audit_id
    ]
    if not waiting:
        raise HTTPException(409, f"audit {audit_id} has no RECOMMENDED plan to approve")
    plan = waiting[0]
    repos.set_plan_state(plan.id, PlanState.PENDING, "approved by an operator")
    return ActionPlanOut.of(repos.get_plan(plan.id))
