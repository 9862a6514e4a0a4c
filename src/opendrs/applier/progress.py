"""Progress of a plan as bus events: every journaled transition becomes one
`opendrs.plan.progress` event carrying the action that moved and the plan's counts,
so the dashboard and `opendrs plans watch` can draw a bar without re-reading it."""

from __future__ import annotations

from collections import Counter
from typing import Any

from opendrs.applier.executor import TransitionHook
from opendrs.applier.summary import describe
from opendrs.domain.action import Action, ActionPlan, ActionState
from opendrs.domain.clock import Clock
from opendrs.domain.event import Event
from opendrs.domain.ports import Bus

EVENT_TYPE = "opendrs.plan.progress"
SOURCE = "opendrs.applier"


def progress_data(plan: ActionPlan, action: Action | None) -> dict[str, Any]:
    """The event's data: plan state, counts by action state, finished/total, and
    the action that moved (when one did)."""
    counts = Counter(a.state.value for a in plan.actions)
    finished = sum(1 for a in plan.actions if a.finished)
    data: dict[str, Any] = {
        "plan": plan.id,
        "plan_state": plan.state.value,
        "finished": finished,
        "total": len(plan.actions),
        "counts": dict(sorted(counts.items())),
        "running": [describe(a) for a in plan.actions if a.state == ActionState.ONGOING],
    }
    if action is not None:
        data |= {
            "action": action.id,
            "state": action.state.value,
            "message": action.message,
            "description": describe(action),
        }
    return data


def publishing_hook(bus: Bus, subject: str, clock: Clock) -> TransitionHook:
    """An `on_transition` hook for PlanExecutor publishing progress on `subject`."""

    def publish(plan: ActionPlan, action: Action | None) -> None:
        bus.publish(
            subject,
            Event(
                type=EVENT_TYPE,
                source=SOURCE,
                time=clock.now(),
                subject=plan.id,
                data=progress_data(plan, action),
            ),
        )

    return publish
