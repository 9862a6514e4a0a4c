"""Evacuation marks: which instances a maintenance evacuation moved off which host,
read from the succeeded migrations of its plan, and which migrations bring an
instance back home (and so end its mark)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from opendrs.domain.action import Action, ActionState, ActionType

# The instance metadata key strategies read the mark under (host_return does).
EVACUATED_FROM = "evacuated_from"


@dataclass(frozen=True, slots=True)
class EvacuationMark:
    """`instance` was migrated off `host` by plan `plan_id` of audit `audit_id`,
    finishing at `at`. An instance carries at most one mark: its latest evacuation."""

    instance: str
    host: str
    audit_id: str
    plan_id: str
    at: float


def _succeeded_migrations(actions: Iterable[Action]) -> Iterable[Action]:
    for action in actions:
        if (
            action.type == ActionType.MIGRATE
            and action.state == ActionState.SUCCEEDED
            and action.instance
            and action.source
            and action.destination
        ):
            yield action


def evacuations(
    actions: Iterable[Action], node: str, audit_id: str, plan_id: str
) -> list[EvacuationMark]:
    """The marks the succeeded migrations off `node` leave (the evacuation plan's
    own migrations; a failed or skipped one moved nothing, so marks nothing)."""
    return [
        EvacuationMark(
            instance=str(a.instance),
            host=node,
            audit_id=audit_id,
            plan_id=plan_id,
            at=a.finished_at if a.finished_at is not None else 0.0,
        )
        for a in _succeeded_migrations(actions)
        if a.source == node
    ]


def arrivals(actions: Iterable[Action]) -> dict[str, list[str]]:
    """{destination host: instances that reached it} of the succeeded migrations:
    an instance marked as evacuated from its destination is home again."""
    landed: dict[str, list[str]] = {}
    for action in _succeeded_migrations(actions):
        landed.setdefault(str(action.destination), []).append(str(action.instance))
    return landed


def marks_by_instance(marks: Sequence[EvacuationMark]) -> dict[str, str]:
    """{instance: host it was evacuated from}."""
    return {m.instance: m.host for m in marks}
