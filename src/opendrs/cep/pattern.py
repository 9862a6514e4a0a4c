"""`followed_by` patterns: a `first` occurrence (an alarm of a rule firing, or a
sample meeting a condition) followed by a `then` occurrence within a time,
both on the same key (the `on` labels), make one incident alarm per key, which
clears when the first clears or after `clear_for` without a new `then`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING

from opendrs.cep.rule import Op, ThresholdRule, compare
from opendrs.domain.alarm import AlarmState, AlarmTransition
from opendrs.domain.errors import InvalidInput

if TYPE_CHECKING:
    from opendrs.cep.machine import Stepper, Track


class Role(IntEnum):
    """What an occurrence is to a pattern, in the order those at one instant apply."""

    CLEARED = 0  # the `first` rule's alarm stopped firing
    FIRST = 1
    THEN = 2


@dataclass(frozen=True, slots=True)
class Occurrence:
    """An alarm of `rule` entering `alarm`, or a sample of `meter` (of the series
    `selector` picks) whose value meets `op threshold`."""

    rule: str = ""
    meter: str = ""
    selector: Mapping[str, str] = field(default_factory=dict)
    op: Op = Op.GT
    threshold: float = 0.0

    def __post_init__(self) -> None:
        if bool(self.rule) == bool(self.meter):
            raise InvalidInput("give either a rule or a meter", field="rule")
        try:
            object.__setattr__(self, "op", Op(self.op))
        except ValueError:
            raise InvalidInput(
                f"unknown op {self.op!r} (expected one of {', '.join(Op)})", field="op"
            ) from None
        if not math.isfinite(self.threshold):
            raise InvalidInput("threshold must be a finite number", field="threshold")
        object.__setattr__(self, "selector", dict(self.selector))

    def met_by(self, labels: Mapping[str, str], value: float) -> bool:
        """Whether a sample of this meter with these labels is an occurrence."""
        if any(labels.get(k) != v for k, v in self.selector.items()):
            return False
        return compare(self.op, value, self.threshold)

    def describe(self) -> str:
        if self.rule:
            return f"alarm {self.rule}"
        picked = ",".join(f"{k}={v}" for k, v in sorted(self.selector.items()))
        where = f"{{{picked}}}" if picked else ""
        return f"{self.meter}{where} {self.op} {self.threshold:g}"


@dataclass(frozen=True, slots=True)
class FollowedBy:
    """`first` then `then` no later than `within` seconds after it, on the same
    values of the `on` labels."""

    first: Occurrence
    then: Occurrence
    within: float
    on: tuple[str, ...]

    def __post_init__(self) -> None:
        if not (self.within > 0 and math.isfinite(self.within)):
            raise InvalidInput("within must be a duration > 0", field="followed_by.within")
        object.__setattr__(self, "on", tuple(self.on))
        if not self.on or not all(self.on) or len(set(self.on)) != len(self.on):
            raise InvalidInput(
                f"on needs distinct, non-empty labels, got {list(self.on)}",
                field="followed_by.on",
            )

    def key(self, labels: Mapping[str, str]) -> dict[str, str] | None:
        """The `on` labels of an occurrence; None when one is missing."""
        out: dict[str, str] = {}
        for name in self.on:
            value = labels.get(name)
            if not value:
                return None
            out[name] = value
        return out

    def describe(self) -> str:
        return (
            f"{self.first.describe()} followed by {self.then.describe()} "
            f"within {self.within:g}s on {','.join(self.on)}"
        )


def check_references(rules: Iterable[ThresholdRule]) -> None:
    """Every rule a pattern names exists and is not itself a pattern."""
    by_name = {rule.name: rule for rule in rules}
    for rule in by_name.values():
        pattern = rule.followed_by
        if pattern is None:
            continue
        for role, occurrence in (("first", pattern.first), ("then", pattern.then)):
            if not occurrence.rule:
                continue
            named = by_name.get(occurrence.rule)
            if named is None:
                raise InvalidInput(
                    f"rule {rule.name!r}: followed_by.{role} names no known rule "
                    f"{occurrence.rule!r}",
                    source=f"rule {rule.name!r}",
                    field=f"followed_by.{role}.rule",
                )
            if named.followed_by is not None:
                raise InvalidInput(
                    f"rule {rule.name!r}: followed_by.{role} names {occurrence.rule!r}, "
                    "itself a followed_by rule (patterns do not chain)",
                    source=f"rule {rule.name!r}",
                    field=f"followed_by.{role}.rule",
                )


class Matcher:
    """Moves the incident tracks of one followed_by rule."""

    def __init__(self, stepper: Stepper) -> None:
        self.stepper = stepper
        pattern = stepper.rule.followed_by
        if pattern is None:
            raise InvalidInput(f"rule {stepper.rule.name!r} has no followed_by", field="rules")
        self.pattern = pattern

    def first(self, track: Track, time: float) -> None:
        """The first half happened: a `then` up to `within` later completes it (the
        latest first counts; a replayed older one changes nothing)."""
        track.first_at = time if track.first_at is None else max(track.first_at, time)
        track.dirty = True

    def then(
        self, track: Track, time: float, value: float | None, cause: str
    ) -> list[AlarmTransition]:
        """The second half happened: an incident if the first is recent enough;
        while the incident is on, a repeat only extends it."""
        first_at = track.first_at
        if first_at is None or not (0 <= time - first_at <= self.pattern.within):
            return []
        track.then_at = time if track.then_at is None else max(track.then_at, time)
        track.last_time = max(track.last_time, time)
        track.dirty = True
        if track.base == AlarmState.ALARM:
            return []
        reason = (
            f"{self.pattern.describe()}: first at {first_at:g}, then {cause} at {time:g} "
            f"({time - first_at:g}s later)"
        )
        details = {
            "pattern": self.pattern.describe(),
            "first_at": first_at,
            "then_at": time,
            "then": cause,
        }
        return self.stepper.move(track, AlarmState.ALARM, time, value, reason, details)

    def first_cleared(self, track: Track, time: float) -> list[AlarmTransition]:
        """The `first` rule no longer fires on the key: the incident is over."""
        track.first_at = None
        track.left_at = None
        track.dirty = True
        if track.base != AlarmState.ALARM:
            return []
        reason = f"{self.pattern.first.describe()} cleared: incident over"
        return self._clear(track, time, reason)

    def advance(self, track: Track, now: float) -> list[AlarmTransition]:
        """Forget a first whose time is up; clear after `clear_for` without a `then`."""
        rule = self.stepper.rule
        out: list[AlarmTransition] = []
        expired = track.first_at is not None and now - track.first_at > self.pattern.within
        if expired and not self.pattern.first.rule:
            track.first_at = None
            track.dirty = True
        if rule.clear_for > 0 and track.base == AlarmState.ALARM and track.then_at is not None:
            due = track.then_at + rule.clear_for
            if due <= now:
                reason = f"no {self.pattern.then.describe()} for {rule.clear_for:g}s: incident over"
                out.extend(self._clear(track, due, reason))
        out.extend(self.stepper.settle(track, now))
        return out

    def idle(self, track: Track) -> bool:
        """Nothing pending, nothing shown: the track may be forgotten."""
        return (
            track.first_at is None
            and track.base == AlarmState.OK
            and track.alarm.state == AlarmState.OK
            and track.announced == AlarmState.OK
        )

    def _clear(self, track: Track, time: float, reason: str) -> list[AlarmTransition]:
        track.then_at = None
        when = max(time, track.alarm.since)
        return self.stepper.move(track, AlarmState.OK, when, None, reason, {})
