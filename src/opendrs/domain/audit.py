"""Audits in Watcher's vocabulary: a goal, a strategy, a scope, and a life cycle;
a scheduled continuous audit also carries its interval and its run times."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from opendrs.domain.errors import InvalidInput
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
# States an audit never leaves: a schedule in one of them has no next run.
ENDED_AUDIT_STATES = frozenset({AuditState.SUCCEEDED, AuditState.FAILED, AuditState.CANCELLED})


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
    # A scheduled continuous audit (made through the API) stays ONGOING and is run
    # every `interval` seconds; the others have no interval and no run times.
    interval: float | None = None
    next_run_at: float | None = None
    last_run_at: float | None = None

    def __post_init__(self) -> None:
        if self.interval is not None and not self.interval > 0:
            raise InvalidInput(
                f"must be a positive number of seconds, not {self.interval}",
                source=f"audit {self.id}",
                field="interval",
            )

    @property
    def scheduled(self) -> bool:
        """A continuous audit the optimization service runs on its interval."""
        return self.audit_type == AuditType.CONTINUOUS and self.interval is not None

    def moved_to(self, wanted: AuditState, message: str = "") -> Audit:
        check_transition("audit", _AUDIT_MOVES, self.state, wanted)
        next_run_at = None if wanted in ENDED_AUDIT_STATES else self.next_run_at
        return replace(self, state=wanted, message=message or self.message, next_run_at=next_run_at)

    def ran(self, at: float) -> Audit:
        """The schedule after a run that started at `at`: the next one an interval later
        (runs missed while nothing was running are not made up)."""
        if self.interval is None:
            raise InvalidInput("only a scheduled audit runs again", field="interval")
        return replace(self, last_run_at=at, next_run_at=at + self.interval)
