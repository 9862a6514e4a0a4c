"""The rule engine: evaluates threshold rules over a stream of samples, keeps one
alarm state per (rule, entity), and reports transitions and the events that rule
actions produce. It is pure: the caller records, publishes and logs the output."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from opendrs.cep.rule import ActionKind, RuleAction, ThresholdRule
from opendrs.domain.alarm import Alarm, AlarmState, AlarmTransition
from opendrs.domain.errors import InvalidInput
from opendrs.domain.event import Event
from opendrs.domain.sample import EntityKind, Sample

EVENT_SOURCE = "opendrs.cep"


@dataclass(frozen=True, slots=True)
class CepOutput:
    """What one batch of samples caused. `ignored` counts (rule, sample) pairs
    skipped because the value was not a number or not newer than the last one seen."""

    transitions: tuple[AlarmTransition, ...] = ()
    events: tuple[Event, ...] = ()
    log_lines: tuple[str, ...] = ()
    ignored: int = 0


@dataclass(slots=True)
class _Track:
    """Mutable bookkeeping for one (rule, entity): the alarm and its streak, i.e.
    consecutive breaching samples while not firing, clearing samples while firing."""

    alarm: Alarm
    streak: int = 0
    last_time: float = -math.inf


class CepEngine:
    def __init__(self, rules: Iterable[ThresholdRule] = ()) -> None:
        self._rules: dict[str, ThresholdRule] = {}
        # Rules are indexed by meter so a sample only meets the rules that read it.
        self._by_meter: dict[str, tuple[ThresholdRule, ...]] = {}
        self._tracks: dict[tuple[str, str], _Track] = {}
        self.set_rules(rules)

    @property
    def rules(self) -> tuple[ThresholdRule, ...]:
        return tuple(self._rules.values())

    def set_rules(self, rules: Iterable[ThresholdRule]) -> None:
        """Replace the rules. Alarms of rules whose name is kept keep their state;
        those of removed rules are forgotten."""
        by_name: dict[str, ThresholdRule] = {}
        for rule in rules:
            if rule.name in by_name:
                raise InvalidInput(f"duplicate rule name {rule.name!r}", field="rules")
            by_name[rule.name] = rule
        by_meter: dict[str, list[ThresholdRule]] = {}
        for rule in by_name.values():
            by_meter.setdefault(rule.meter, []).append(rule)
        kept: dict[tuple[str, str], _Track] = {}
        for key, track in self._tracks.items():
            kept_rule = by_name.get(key[0])
            if kept_rule is not None:
                track.alarm = replace(track.alarm, severity=kept_rule.severity)
                kept[key] = track
        self._rules = by_name
        self._by_meter = {meter: tuple(group) for meter, group in by_meter.items()}
        self._tracks = kept

    def states(self) -> list[Alarm]:
        """The current alarm of every (rule, entity) seen, ordered by key."""
        return [self._tracks[key].alarm for key in sorted(self._tracks)]

    def process(self, samples: Iterable[Sample]) -> CepOutput:
        transitions: list[AlarmTransition] = []
        events: list[Event] = []
        log_lines: list[str] = []
        ignored = 0
        for sample in samples:
            rules = self._by_meter.get(sample.meter)
            if not rules:
                continue
            if not math.isfinite(sample.value):
                ignored += len(rules)
                continue
            for rule in rules:
                track = self._track(rule, sample)
                if sample.time <= track.last_time:
                    ignored += 1
                    continue
                track.last_time = sample.time
                transition = self._step(rule, track, sample)
                if transition is None:
                    continue
                transitions.append(transition)
                if transition.current == AlarmState.ALARM:
                    for index, action in enumerate(rule.actions):
                        if action.kind == ActionKind.EVENT:
                            events.append(_event(action, index, rule, sample, transition))
                        else:
                            log_lines.append(
                                f"alarm {rule.name} on {sample.entity}: {transition.reason}"
                            )
        return CepOutput(tuple(transitions), tuple(events), tuple(log_lines), ignored)

    def _track(self, rule: ThresholdRule, sample: Sample) -> _Track:
        key = (rule.name, sample.entity)
        track = self._tracks.get(key)
        if track is None:
            alarm = Alarm(
                rule=rule.name,
                entity=sample.entity,
                severity=rule.severity,
                labels={**sample.labels, **rule.labels},
            )
            track = self._tracks[key] = _Track(alarm)
        return track

    def _step(self, rule: ThresholdRule, track: _Track, sample: Sample) -> AlarmTransition | None:
        """Advance one (rule, entity) by one sample; the transition, if the state moved."""
        value = sample.value
        current = track.alarm.state
        if current == AlarmState.ALARM:
            if rule.holds(value):
                track.streak = 0
                return None
            track.streak += 1
            if track.streak < rule.clear_samples:
                return None
            track.streak = 0
            limit = rule.threshold if rule.clear_threshold is None else rule.clear_threshold
            reason = (
                f"{rule.meter} no longer {rule.op} {limit:g} for {rule.clear_samples} "
                f"sample(s), most recent: {value:g}"
            )
            return self._move(rule, track, AlarmState.OK, sample, reason)
        if not rule.breaches(value):
            track.streak = 0
            if current == AlarmState.OK:
                return None
            reason = f"{rule.describe()} no longer holds, most recent: {value:g}"
            return self._move(rule, track, AlarmState.OK, sample, reason)
        track.streak += 1
        if track.streak >= rule.for_samples:
            track.streak = 0
            reason = (
                f"{rule.describe()} for {rule.for_samples} consecutive sample(s), "
                f"most recent: {value:g}"
            )
            return self._move(rule, track, AlarmState.ALARM, sample, reason)
        if current == AlarmState.PENDING:
            return None
        reason = (
            f"{rule.describe()} for {track.streak} of {rule.for_samples} samples, "
            f"most recent: {value:g}"
        )
        return self._move(rule, track, AlarmState.PENDING, sample, reason)

    def _move(
        self,
        rule: ThresholdRule,
        track: _Track,
        wanted: AlarmState,
        sample: Sample,
        reason: str,
    ) -> AlarmTransition:
        previous = track.alarm
        track.alarm = previous.moved_to(wanted, sample.time, sample.value)
        return AlarmTransition(
            rule=rule.name,
            entity=sample.entity,
            previous=previous.state,
            current=wanted,
            time=sample.time,
            value=sample.value,
            severity=rule.severity,
            source=previous.source,
            reason=reason,
            labels=previous.labels,
        )


def scope_host(sample: Sample) -> str:
    """The host a sample is about: the entity itself for host samples."""
    return sample.entity if sample.kind == EntityKind.HOST else sample.host


def _event(
    action: RuleAction,
    index: int,
    rule: ThresholdRule,
    sample: Sample,
    transition: AlarmTransition,
) -> Event:
    host = scope_host(sample)
    data: dict[str, Any] = {
        "goal": action.goal,
        "strategy": action.strategy,
        "parameters": dict(action.parameters),
        "scope": [host] if host else [],
        "rule": rule.name,
        "entity": sample.entity,
        "meter": sample.meter,
        "value": sample.value,
        "severity": rule.severity.value,
        "reason": transition.reason,
    }
    # A stable id lets a redelivered or replayed transition be recognised downstream.
    stable = uuid.uuid5(uuid.NAMESPACE_URL, f"opendrs:cep:{transition.dedup_key}:{index}")
    return Event(
        type=action.event_type,
        source=EVENT_SOURCE,
        time=sample.time,
        data=data,
        subject=sample.entity,
        id=stable.hex,
    )
