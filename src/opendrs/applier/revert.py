"""Reverting a plan: the moves that take every VM it moved back to where it started,
planned as a new plan by the same planner (so the way back is as safe as the way
out), with the hosts it drained or powered off brought back first where VMs return."""

from __future__ import annotations

from opendrs.domain.action import ActionPlan, ActionState, ActionType, PlanLimits
from opendrs.domain.cluster import Cluster
from opendrs.domain.host import HostState
from opendrs.domain.solution import HostChange, Move, Solution
from opendrs.planner import build_plan


def revert_solution(plan: ActionPlan, cluster: Cluster) -> Solution:
    """What undoing `plan`'s completed moves takes, on `cluster` as it is now."""
    origin: dict[str, str] = {}
    for action in plan.actions:
        if action.type == ActionType.MIGRATE and action.instance and action.source:
            # Parents come first, so the first leg of a temporary hop is seen first.
            origin.setdefault(action.instance, action.source)
    changed_hosts = {
        str(a.parameters.get("node"))
        for a in plan.actions
        if a.type in (ActionType.CHANGE_NODE_STATE, ActionType.POWER)
        and a.state == ActionState.SUCCEEDED
    }
    moves: list[Move] = []
    notes: list[str] = []
    for name, start in origin.items():
        instance = cluster.instances.get(name)
        if instance is None:
            notes.append(f"{name} is gone; nothing to move back")
            continue
        if instance.host != start:
            moves.append(
                Move(name, instance.host, start, reason=f"revert plan {plan.id}: back to {start}")
            )
    changes: list[HostChange] = []
    for host in sorted({m.destination for m in moves}):
        state = cluster.hosts[host].state if host in cluster.hosts else HostState.ENABLED
        if state != HostState.ENABLED and host in changed_hosts:
            changes.append(
                HostChange(host, HostState.ENABLED, f"revert plan {plan.id}: {host} takes VMs back")
            )
    if not moves:
        notes.append(f"plan {plan.id} left every VM where it started")
    return Solution(moves=tuple(moves), host_changes=tuple(changes), explanations=tuple(notes))


def plan_revert(plan: ActionPlan, cluster: Cluster, limits: PlanLimits, now: float) -> ActionPlan:
    """The revert of `plan` as a new plan (RECOMMENDED, to be approved and started
    like any other); raises PlanningError when the way back is unsafe."""
    return build_plan(revert_solution(plan, cluster), cluster, limits, plan.audit_id, now)
