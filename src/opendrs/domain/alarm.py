"""Alarms: the state of one rule on one key, and the transitions that are notified."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from opendrs.domain.transitions import check_transition


class AlarmState(StrEnum):
    OK = "ok"
    PENDING = "pending"
    ALARM = "alarm"
    NO_DATA = "no_data"
    # Too many transitions in a short time: notifications are held until it settles.
    FLAPPING = "flapping"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


_ALARM_MOVES: dict[AlarmState, frozenset[AlarmState]] = {
    AlarmState.OK: frozenset(
        {AlarmState.PENDING, AlarmState.ALARM, AlarmState.NO_DATA, AlarmState.FLAPPING}
    ),
    AlarmState.PENDING: frozenset(
        {AlarmState.OK, AlarmState.ALARM, AlarmState.NO_DATA, AlarmState.FLAPPING}
    ),
    AlarmState.ALARM: frozenset({AlarmState.OK, AlarmState.NO_DATA, AlarmState.FLAPPING}),
    AlarmState.NO_DATA: frozenset(
        {AlarmState.OK, AlarmState.PENDING, AlarmState.ALARM, AlarmState.FLAPPING}
    ),
    AlarmState.FLAPPING: frozenset(
        {AlarmState.OK, AlarmState.PENDING, AlarmState.ALARM, AlarmState.NO_DATA}
    ),
}

# Pending is never notified: it is a rule waiting for its `for` to be met.
NOTIFIED_STATES = frozenset({AlarmState.OK, AlarmState.ALARM, AlarmState.NO_DATA})


@dataclass(frozen=True, slots=True)
class Alarm:
    """The current state of `rule` for one entity."""

    rule: str
    entity: str
    state: AlarmState = AlarmState.OK
    since: float = 0.0
    value: float | None = None
    severity: Severity = Severity.WARNING
    source: str = "cep"
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.rule}/{self.entity}"

    def moved_to(self, wanted: AlarmState, when: float, value: float | None) -> Alarm:
        check_transition("alarm", _ALARM_MOVES, self.state, wanted)
        return replace(self, state=wanted, since=when, value=value)


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """A change of state, the unit of notification (deduplicated by `dedup_key`)."""

    rule: str
    entity: str
    previous: AlarmState
    current: AlarmState
    time: float
    value: float | None
    severity: Severity = Severity.WARNING
    source: str = "cep"
    reason: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    # The rule's version when it moved, and what it saw: aggregate, window values,
    # thresholds (JSON-able), so the history explains every transition.
    rule_version: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    # Held transitions (while flapping, or when nothing new is announced) are
    # recorded but not notified.
    held: bool = False
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def notified(self) -> bool:
        if self.held or self.current not in NOTIFIED_STATES:
            return False
        # ok after pending was never announced, so its return is not news either.
        return not (self.current == AlarmState.OK and self.previous == AlarmState.PENDING)

    @property
    def dedup_key(self) -> str:
        return f"{self.rule}/{self.entity}/{self.current.value}/{self.time:.3f}"

    def as_alarm(self) -> Alarm:
        return Alarm(
            rule=self.rule,
            entity=self.entity,
            state=self.current,
            since=self.time,
            value=self.value,
            severity=self.severity,
            source=self.source,
            labels=self.labels,
        )
