"""Threshold rules: which meter, which comparison, for how many samples, with what
hysteresis, and what to do when the rule goes into alarm."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from opendrs.domain.alarm import Severity
from opendrs.domain.errors import InvalidInput


class Op(StrEnum):
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    EQ = "=="
    NE = "!="


_COMPARE: dict[Op, Callable[[float, float], bool]] = {
    Op.GT: operator.gt,
    Op.GE: operator.ge,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
}

# Hysteresis needs a direction: "back below" or "back above" has no meaning for == and !=.
_UPWARD = frozenset({Op.GT, Op.GE})
_DOWNWARD = frozenset({Op.LT, Op.LE})


class ActionKind(StrEnum):
    LOG = "log"
    EVENT = "event"


AUDIT_REQUESTED = "opendrs.audit.requested"


@dataclass(frozen=True, slots=True)
class RuleAction:
    """Done once each time the rule's alarm fires: a log line, or an event (by
    default a request for an audit of `goal` with `strategy` and `parameters`)."""

    kind: ActionKind = ActionKind.LOG
    event_type: str = AUDIT_REQUESTED
    goal: str = ""
    strategy: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", ActionKind(self.kind))
        except ValueError:
            raise InvalidInput(
                f"unknown action kind {self.kind!r} (expected log or event)", field="kind"
            ) from None
        if self.kind == ActionKind.EVENT and not self.event_type:
            raise InvalidInput("an event action needs an event_type", field="event_type")


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """`meter op threshold` held for `for_samples` consecutive samples of one entity
    puts the (rule, entity) alarm in ALARM. With a `clear_threshold` the alarm stays
    until `meter op clear_threshold` no longer holds for `clear_samples` samples."""

    name: str
    meter: str
    threshold: float
    op: Op = Op.GT
    for_samples: int = 1
    clear_threshold: float | None = None
    clear_samples: int = 1
    severity: Severity = Severity.WARNING
    labels: Mapping[str, str] = field(default_factory=dict)
    actions: tuple[RuleAction, ...] = ()

    def __post_init__(self) -> None:
        where = f"rule {self.name!r}" if self.name else "rule"
        if not self.name:
            raise InvalidInput("a rule needs a name", source=where, field="name")
        if not self.meter:
            raise InvalidInput("a rule needs a meter", source=where, field="meter")
        try:
            object.__setattr__(self, "op", Op(self.op))
        except ValueError:
            raise InvalidInput(
                f"unknown operator {self.op!r} (expected one of {', '.join(Op)})",
                source=where,
                field="op",
            ) from None
        try:
            object.__setattr__(self, "severity", Severity(self.severity))
        except ValueError:
            raise InvalidInput(
                f"unknown severity {self.severity!r}", source=where, field="severity"
            ) from None
        if not math.isfinite(self.threshold):
            raise InvalidInput("threshold must be a finite number", source=where, field="threshold")
        if self.for_samples < 1:
            raise InvalidInput("for_samples must be at least 1", source=where, field="for_samples")
        if self.clear_samples < 1:
            raise InvalidInput(
                "clear_samples must be at least 1", source=where, field="clear_samples"
            )
        object.__setattr__(self, "actions", tuple(self.actions))
        self._check_clear(where)

    def _check_clear(self, where: str) -> None:
        clear = self.clear_threshold
        if clear is None:
            return
        if not math.isfinite(clear):
            raise InvalidInput(
                "clear_threshold must be a finite number", source=where, field="clear_threshold"
            )
        if self.op in _UPWARD and clear > self.threshold:
            raise InvalidInput(
                f"clear_threshold {clear} must not be above threshold {self.threshold} "
                f"for op {self.op}",
                source=where,
                field="clear_threshold",
            )
        if self.op in _DOWNWARD and clear < self.threshold:
            raise InvalidInput(
                f"clear_threshold {clear} must not be below threshold {self.threshold} "
                f"for op {self.op}",
                source=where,
                field="clear_threshold",
            )
        if self.op not in _UPWARD | _DOWNWARD:
            raise InvalidInput(
                f"clear_threshold has no direction with op {self.op}",
                source=where,
                field="clear_threshold",
            )

    def breaches(self, value: float) -> bool:
        """The firing condition against `threshold`."""
        return _COMPARE[self.op](value, self.threshold)

    def holds(self, value: float) -> bool:
        """Whether an alarm already firing stays firing: the condition against the
        clear threshold when there is one (hysteresis), else the firing condition."""
        limit = self.threshold if self.clear_threshold is None else self.clear_threshold
        return _COMPARE[self.op](value, limit)

    def describe(self) -> str:
        return f"{self.meter} {self.op} {self.threshold:g}"
