"""Threshold rules: which series (meter and label selector), which aggregate over
which sliding window, which comparison for how long (`for` duration or N-of-M),
how it clears (hysteresis, `clear_for`), what absence means, when it is flapping,
and what to do on each transition."""

from __future__ import annotations

import hashlib
import json
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from opendrs.domain.alarm import AlarmState, Severity
from opendrs.domain.errors import InvalidInput

if TYPE_CHECKING:
    from opendrs.cep.pattern import FollowedBy


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


def compare(op: Op, value: float, threshold: float) -> bool:
    """`value op threshold`."""
    return _COMPARE[op](value, threshold)


# Hysteresis needs a direction: "back below" or "back above" has no meaning for == and !=.
_UPWARD = frozenset({Op.GT, Op.GE})
_DOWNWARD = frozenset({Op.LT, Op.LE})


class Aggregate(StrEnum):
    """What a window of samples is reduced to before the comparison."""

    LAST = "last"
    MEAN = "mean"
    MAX = "max"
    MIN = "min"
    SUM = "sum"
    COUNT = "count"
    RATE = "rate"  # per second, between the first and last sample, counter resets added


class MissingPolicy(StrEnum):
    """What the absence of a series' samples for `after` seconds means."""

    NO_DATA = "no_data"  # the alarm goes to no_data
    KEEP = "keep"  # nothing changes
    BREACHING = "breaching"  # absence counts as the condition holding


class ActionKind(StrEnum):
    LOG = "log"
    EVENT = "event"
    WEBHOOK = "webhook"


AUDIT_REQUESTED = "opendrs.audit.requested"


@dataclass(frozen=True, slots=True)
class RuleAction:
    """Done on the rule's notified transitions: a log line, a webhook call (in
    Alertmanager's payload), or an event on the bus (by default a request for an
    audit of `goal` with `strategy` and `parameters`).

    `on` (`when:` in rule files) lists the states whose arrival runs the action;
    empty means `alarm` for an event (an audit is wanted when it fires) and every
    notified state otherwise."""

    kind: ActionKind = ActionKind.LOG
    event_type: str = AUDIT_REQUESTED
    goal: str = ""
    strategy: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    url: str = ""
    on: tuple[AlarmState, ...] = ()

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", ActionKind(self.kind))
        except ValueError:
            raise InvalidInput(
                f"unknown action kind {self.kind!r} (expected one of {', '.join(ActionKind)})",
                field="type",
            ) from None
        try:
            object.__setattr__(self, "on", tuple(AlarmState(s) for s in self.on))
        except ValueError as exc:
            raise InvalidInput(f"unknown state in `when`: {exc}", field="when") from None
        if self.kind == ActionKind.EVENT and not self.event_type:
            raise InvalidInput("an event action needs an event_type", field="event_type")
        if self.kind == ActionKind.WEBHOOK and not self.url.startswith(("http://", "https://")):
            raise InvalidInput(
                f"a webhook action needs an http(s) url, got {self.url!r}", field="url"
            )

    def runs_on(self, state: AlarmState) -> bool:
        if self.on:
            return state in self.on
        return state == AlarmState.ALARM if self.kind == ActionKind.EVENT else True


@dataclass(frozen=True, slots=True)
class Missing:
    """The missing-data policy: `policy` once no sample came for `after` seconds
    (a `stale` marker makes a series absent at once)."""

    policy: MissingPolicy = MissingPolicy.NO_DATA
    after: float = 600.0

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "policy", MissingPolicy(self.policy))
        except ValueError:
            raise InvalidInput(
                f"unknown missing policy {self.policy!r} "
                f"(expected one of {', '.join(MissingPolicy)})",
                field="missing.policy",
            ) from None
        if not (self.after >= 0 and math.isfinite(self.after)):
            raise InvalidInput("missing.after must be a duration >= 0", field="missing.after")


@dataclass(frozen=True, slots=True)
class Flapping:
    """More than `transitions` changes of state within `within` seconds make the
    alarm flapping; it settles once `within` passes without a change."""

    transitions: int
    within: float

    def __post_init__(self) -> None:
        if self.transitions < 1:
            raise InvalidInput(
                "flapping.transitions must be at least 1", field="flapping.transitions"
            )
        if not (self.within > 0 and math.isfinite(self.within)):
            raise InvalidInput("flapping.within must be a duration > 0", field="flapping.within")


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """`aggregate(meter over window) op threshold` on each series the selector
    matches. It fires once the condition has held for `for_seconds` (since it
    first held) or on `n` of the last `m` samples (`n_of_m`; `for_samples=N` is
    N of N). Once firing, it clears when `aggregate op clear_threshold` (the
    threshold when unset) has stopped holding for `clear_for` seconds and
    `clear_samples` samples.

    With `group_by` the rule is about groups of series instead (see
    `cep/group.py`): each member's `aggregate` is reduced by `group_aggregate`
    and the alarm's key is the group's labels. With `followed_by` it is a
    pattern (see `cep/pattern.py`): `meter`, `op` and `threshold` are unused."""

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
    selector: Mapping[str, str] = field(default_factory=dict)
    aggregate: Aggregate = Aggregate.LAST
    window: float = 0.0
    for_seconds: float = 0.0
    n_of_m: tuple[int, int] | None = None
    clear_for: float = 0.0
    missing: Missing = field(default_factory=Missing)
    flapping: Flapping | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    scale: float = 1.0
    group_by: tuple[str, ...] = ()
    group_aggregate: Aggregate = Aggregate.MEAN
    followed_by: FollowedBy | None = None
    version: str = ""

    def __post_init__(self) -> None:
        where = f"rule {self.name!r}" if self.name else "rule"
        if not self.name:
            raise InvalidInput("a rule needs a name", source=where, field="name")
        if not self.meter and self.followed_by is None:
            raise InvalidInput("a rule needs a meter", source=where, field="meter")
        self._coerce(where)
        self._check_group(where)
        self._check_pattern(where)
        if not math.isfinite(self.threshold):
            raise InvalidInput("threshold must be a finite number", source=where, field="threshold")
        if self.for_samples < 1:
            raise InvalidInput("for_samples must be at least 1", source=where, field="for_samples")
        if self.clear_samples < 1:
            raise InvalidInput(
                "clear_samples must be at least 1", source=where, field="clear_samples"
            )
        for name in ("window", "for_seconds", "clear_for"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise InvalidInput(f"{name} must be a duration >= 0", source=where, field=name)
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise InvalidInput("scale must be a number > 0", source=where, field="scale")
        if self.aggregate in (Aggregate.RATE,) and self.window <= 0:
            raise InvalidInput("aggregate rate needs a window > 0", source=where, field="window")
        self._check_for(where)
        self._check_clear(where)
        if not self.version:
            object.__setattr__(self, "version", self._fingerprint())

    def _coerce(self, where: str) -> None:
        for name, kind in (
            ("op", Op),
            ("severity", Severity),
            ("aggregate", Aggregate),
            ("group_aggregate", Aggregate),
        ):
            raw = getattr(self, name)
            try:
                object.__setattr__(self, name, kind(raw))
            except ValueError:
                raise InvalidInput(
                    f"unknown {name} {raw!r} (expected one of {', '.join(kind)})",
                    source=where,
                    field=name,
                ) from None
        object.__setattr__(self, "actions", tuple(self.actions))
        object.__setattr__(self, "labels", dict(self.labels))
        object.__setattr__(self, "selector", dict(self.selector))
        object.__setattr__(self, "annotations", dict(self.annotations))

    def _check_group(self, where: str) -> None:
        object.__setattr__(self, "group_by", tuple(self.group_by))
        if not self.group_by:
            return
        if len(set(self.group_by)) != len(self.group_by) or not all(self.group_by):
            raise InvalidInput(
                f"group_by needs distinct, non-empty labels, got {list(self.group_by)}",
                source=where,
                field="group_by",
            )
        if self.group_aggregate in (Aggregate.RATE, Aggregate.LAST):
            raise InvalidInput(
                f"group_aggregate is one of mean, max, min, sum, count, not {self.group_aggregate}",
                source=where,
                field="group_aggregate",
            )
        if self.followed_by is not None:
            raise InvalidInput(
                "a rule has either group_by or followed_by, not both",
                source=where,
                field="group_by",
            )

    def _check_pattern(self, where: str) -> None:
        pattern = self.followed_by
        if pattern is None:
            return
        if self.for_seconds > 0 or self.n_of_m is not None or self.clear_threshold is not None:
            raise InvalidInput(
                "a followed_by rule fires on its pattern: for, n_of_m and clear_threshold "
                "do not apply (use clear_for)",
                source=where,
                field="followed_by",
            )
        if self.missing.policy == MissingPolicy.BREACHING:
            raise InvalidInput(
                "missing: breaching does not apply to a followed_by rule",
                source=where,
                field="missing.policy",
            )
        if not pattern.first.rule and self.clear_for <= 0:
            raise InvalidInput(
                "a followed_by rule whose `first` is a meter condition needs clear_for > 0 "
                "(nothing else would clear it)",
                source=where,
                field="clear_for",
            )
        if self.name in (pattern.first.rule, pattern.then.rule):
            raise InvalidInput(
                "a followed_by rule cannot follow itself", source=where, field="followed_by"
            )

    def _check_for(self, where: str) -> None:
        if self.n_of_m is None:
            if self.for_samples > 1:
                object.__setattr__(self, "n_of_m", (self.for_samples, self.for_samples))
            return
        n, m = self.n_of_m
        if not (1 <= n <= m <= 1024):
            raise InvalidInput(
                f"n_of_m needs 1 <= n <= m <= 1024, got [{n}, {m}]", source=where, field="n_of_m"
            )
        if self.for_seconds > 0:
            raise InvalidInput(
                "give either `for` (a duration) or n_of_m, not both", source=where, field="n_of_m"
            )
        object.__setattr__(self, "n_of_m", (int(n), int(m)))

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

    def _fingerprint(self) -> str:
        """A short hash of everything that decides the rule's behaviour."""
        described = {
            "meter": self.meter,
            "threshold": self.threshold,
            "op": self.op.value,
            "clear_threshold": self.clear_threshold,
            "clear_samples": self.clear_samples,
            "selector": sorted(self.selector.items()),
            "aggregate": self.aggregate.value,
            "window": self.window,
            "for_seconds": self.for_seconds,
            "n_of_m": self.n_of_m,
            "clear_for": self.clear_for,
            "missing": [self.missing.policy.value, self.missing.after],
            "flapping": None
            if self.flapping is None
            else [self.flapping.transitions, self.flapping.within],
            "severity": self.severity.value,
            "labels": sorted(self.labels.items()),
            "scale": self.scale,
        }
        # Added only when used, so the versions of existing rules stay what they were.
        if self.group_by:
            described["group"] = [list(self.group_by), self.group_aggregate.value]
        if self.followed_by is not None:
            described["followed_by"] = self.followed_by.describe()
        text = json.dumps(described, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def selects(self, labels: Mapping[str, str]) -> bool:
        """Whether a series with these labels is one of the rule's."""
        return all(labels.get(k) == v for k, v in self.selector.items())

    def breaches(self, value: float) -> bool:
        """The firing condition against `threshold`."""
        return _COMPARE[self.op](value, self.threshold)

    def holds(self, value: float) -> bool:
        """Whether an alarm already firing stays firing: the condition against the
        clear threshold when there is one (hysteresis), else the firing condition."""
        return _COMPARE[self.op](value, self.clear_limit)

    @property
    def clear_limit(self) -> float:
        return self.threshold if self.clear_threshold is None else self.clear_threshold

    def describe(self) -> str:
        if self.followed_by is not None:
            return self.followed_by.describe()
        if self.group_by:
            member = (
                self.meter
                if self.aggregate == Aggregate.LAST
                else f"{self.aggregate}({self.meter})"
            )
            by = ",".join(self.group_by)
            return f"{self.group_aggregate}({member}) by {by} {self.op} {self.threshold:g}"
        subject = (
            self.meter if self.aggregate == Aggregate.LAST else f"{self.aggregate}({self.meter})"
        )
        return f"{subject} {self.op} {self.threshold:g}"
