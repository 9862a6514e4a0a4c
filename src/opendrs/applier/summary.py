"""How the applier names actions and sums up a finished plan for people."""

from __future__ import annotations

from opendrs.domain.action import Action, ActionPlan, ActionState, ActionType


def describe(action: Action) -> str:
    """A short human name: `migrate vm1 (a→b)`, `b→maintenance`, `power off b→off`, `nop`."""
    p = action.parameters
    if action.type == ActionType.MIGRATE:
        return f"migrate {action.instance} ({action.source}→{action.destination})"
    if action.type == ActionType.CHANGE_NODE_STATE:
        return f"{p.get('node')}→{p.get('state')}"
    if action.type == ActionType.POWER:
        return f"power {p.get('power', '')} {p.get('node')}→{p.get('state')}".replace("  ", " ")
    return action.type.value


def outcome(plan: ActionPlan) -> str:
    """What happened: counts, and every action that failed, was skipped or cancelled."""
    by_state: dict[ActionState, list[Action]] = {}
    for action in plan.actions:
        by_state.setdefault(action.state, []).append(action)
    done = len(by_state.get(ActionState.SUCCEEDED, []))
    parts = [f"{done} of {len(plan.actions)} actions succeeded"]
    failed = by_state.get(ActionState.FAILED, [])
    if failed:
        parts.append("failed: " + "; ".join(f"{describe(a)} ({a.message})" for a in failed))
    skipped = by_state.get(ActionState.SKIPPED, [])
    if skipped:
        parts.append("skipped: " + "; ".join(f"{describe(a)} ({a.message})" for a in skipped))
    cancelled = by_state.get(ActionState.CANCELLED, [])
    if cancelled:
        parts.append("cancelled: " + ", ".join(describe(a) for a in cancelled))
    return "; ".join(parts)
