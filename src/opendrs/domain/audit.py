"""Audits in Watcher's vocabulary: a goal, a strategy, a scope, and a life cycle."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from opendrs.domain.event import new_id
from opendrs.domain.transitions import check_transition


class AuditType(StrEnum):
    ONESHOT = "oneshot"
    CONTINUOUS = "continuous"
    EVENT = "event"


class AuditState(StrEnum):
    PENDING = "PENDING"
    ONGOING = "ONGOING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SUSPENDED = "SUSPENDED"


_AUDIT_MOVES: dict[AuditState, frozenset[AuditState]] = {
    AuditState.PENDING: frozenset({AuditState.ONGOING, AuditState.CANCELLED}),
    AuditState.ONGOING: frozenset(
        {AuditState.SUCCEEDED, AuditState.FAILED, AuditState.CANCELLED, AuditState.SUSPENDED}
    ),
    AuditState.SUSPENDED: frozenset({AuditState.ONGOING, AuditState.CANCELLED}),
}


@dataclass(frozen=True, slots=True)
class Audit:
    goal: str
    strategy: str
    audit_type: AuditType = AuditType.ONESHOT
    scope: tuple[str, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    auto_trigger: bool = True
    state: AuditState = AuditState.PENDING
    trigger: str = ""
    message: str = ""
    created_at: float = 0.0
    id: str = field(default_factory=new_id)

    def moved_to(self, wanted: AuditState, message: str = "") -> Audit:
        check_transition("audit", _AUDIT_MOVES, self.state, wanted)
        return replace(self, state=wanted, message=message or self.message)
