"""The rule engine: routes samples to the rules that select their series, keeps
one alarm state machine per (rule, series), applies missing-data policies as
time passes, and reports the transitions, the events and the webhook calls that
rule actions produce. It is pure: the caller records, publishes and sends."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from opendrs.cep.machine import Stepper, Track
from opendrs.cep.rule import ActionKind, RuleAction, ThresholdRule
from opendrs.cep.series import series_labels, series_name
from opendrs.domain.alarm import Alarm, AlarmTransition
from opendrs.domain.errors import InvalidInput
from opendrs.domain.event import Event
from opendrs.domain.sample import EntityKind, Sample

EVENT_SOURCE = "opendrs.cep"

SeriesKey = tuple[tuple[str, str], ...]
TrackKey = tuple[str, SeriesKey]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A webhook a rule asks to call for one notified transition."""

    url: str
    transition: AlarmTransition


@dataclass(frozen=True, slots=True)
class CepOutput:
    """What one batch (or the passing of time) caused. `ignored` counts (rule,
    sample) pairs skipped because the value was not a number or not newer than
    the last one seen."""

    transitions: tuple[AlarmTransition, ...] = ()
    events: tuple[Event, ...] = ()
    log_lines: tuple[str, ...] = ()
    ignored: int = 0
    deliveries: tuple[Delivery, ...] = ()

    @property
    def notifications(self) -> tuple[AlarmTransition, ...]:
        return tuple(t for t in self.transitions if t.notified)


def key_of(labels: Mapping[str, str]) -> SeriesKey:
    return tuple(sorted(labels.items()))


class CepEngine:
    def __init__(self, rules: Iterable[ThresholdRule] = ()) -> None:
        self._rules: dict[str, ThresholdRule] = {}
        self._steppers: dict[str, Stepper] = {}
        # Rules are indexed by meter so a sample only meets the rules that read it.
        self._by_meter: dict[str, tuple[ThresholdRule, ...]] = {}
        self._tracks: dict[TrackKey, Track] = {}
        self._removed: list[tuple[str, str]] = []  # (rule, entity) forgotten since `changes`
        self.set_rules(rules)

    @property
    def rules(self) -> tuple[ThresholdRule, ...]:
        return tuple(self._rules.values())

    def set_rules(self, rules: Iterable[ThresholdRule]) -> None:
        """Replace the rules atomically (a duplicate name changes nothing). The
        series of a rule whose name is kept keep their state, timers and window,
        whatever else was edited; those of removed rules are forgotten."""
        by_name: dict[str, ThresholdRule] = {}
        for rule in rules:
            if rule.name in by_name:
                raise InvalidInput(f"duplicate rule name {rule.name!r}", field="rules")
            by_name[rule.name] = rule
        by_meter: dict[str, list[ThresholdRule]] = {}
        for rule in by_name.values():
            by_meter.setdefault(rule.meter, []).append(rule)
        kept: dict[TrackKey, Track] = {}
        for key, track in self._tracks.items():
            kept_rule = by_name.get(key[0])
            if kept_rule is not None and kept_rule.selects(track.labels):
                if kept_rule is not self._rules.get(key[0]):
                    track.adapt(kept_rule)
                kept[key] = track
            else:
                self._removed.append((key[0], track.alarm.entity))
        self._rules = by_name
        self._steppers = {name: Stepper(rule) for name, rule in by_name.items()}
        self._by_meter = {meter: tuple(group) for meter, group in by_meter.items()}
        self._tracks = kept

    def states(self) -> list[Alarm]:
        """The current alarm of every (rule, series) seen, ordered by key."""
        return [self._tracks[key].alarm for key in sorted(self._tracks)]

    # --- inputs -----------------------------------------------------------

    def process(self, samples: Iterable[Sample]) -> CepOutput:
        transitions: list[AlarmTransition] = []
        ignored = 0
        for sample in samples:
            rules = self._by_meter.get(sample.meter)
            if not rules:
                continue
            if not math.isfinite(sample.value):
                ignored += len(rules)
                continue
            labels = series_labels(sample)
            series = key_of(labels)
            for rule in rules:
                if rule.selector and not rule.selects(labels):
                    continue
                track = self._track(rule, series, labels)
                if sample.time <= track.last_time:
                    ignored += 1
                    continue
                transitions.extend(
                    self._steppers[rule.name].observe(track, sample.time, sample.value)
                )
        return self._output(transitions, ignored)

    def end_series(self, meter: str, labels: Mapping[str, str], time: float) -> None:
        """A staleness marker: the series stopped at `time` (its rules' missing-data
        policies apply from then on, at the next `advance`)."""
        series = key_of(labels)
        for rule in self._by_meter.get(meter, ()):
            track = self._tracks.get((rule.name, series))
            if track is not None and time > track.last_time:
                self._steppers[rule.name].end(track, time)

    def advance(self, now: float) -> CepOutput:
        """Let time pass: silent series meet their missing-data policy and flapping
        alarms that have calmed down settle."""
        transitions: list[AlarmTransition] = []
        for (name, _), track in sorted(self._tracks.items()):
            if now < track.last_time:
                continue
            transitions.extend(self._steppers[name].absent(track, now))
        return self._output(transitions, 0)

    def retire(self, entity: str, time: float) -> CepOutput:
        """The entity (a deleted VM, a removed host) is gone: its alarms are resolved
        and forgotten instead of going to no_data."""
        transitions: list[AlarmTransition] = []
        for key in sorted(self._tracks):
            track = self._tracks[key]
            labels = track.labels
            if entity not in (labels.get("instance"), labels.get("volume")) and not (
                labels.get("host") == entity and "instance" not in labels and "volume" not in labels
            ):
                continue
            transitions.extend(
                self._steppers[key[0]].retire(track, time, f"{entity} was deleted: alarm retired")
            )
            del self._tracks[key]
            self._removed.append((key[0], track.alarm.entity))
        return self._output(transitions, 0)

    # --- persistence ------------------------------------------------------

    def snapshot(self, only_dirty: bool = False) -> list[dict[str, Any]]:
        """JSON-able state of the tracks (with their rule's name and version); with
        `only_dirty`, just those changed since the last snapshot, which are marked clean."""
        out: list[dict[str, Any]] = []
        for (name, _), track in sorted(self._tracks.items()):
            if only_dirty and not track.dirty:
                continue
            track.dirty = False
            out.append({"rule": name, "version": self._rules[name].version, **track.snapshot()})
        return out

    def changes(self) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """What to persist since the last call: changed tracks, forgotten (rule, entity)."""
        removed, self._removed = self._removed, []
        return self.snapshot(only_dirty=True), removed

    def forget(self, drop: Callable[[Mapping[str, str]], bool]) -> int:
        """Drop the tracks whose series labels `drop` picks, without resolving them
        (a worker letting a partition go: the next holder restores them)."""
        gone = [key for key, track in self._tracks.items() if drop(track.labels)]
        for key in gone:
            del self._tracks[key]
        return len(gone)

    def restore(
        self,
        saved: Iterable[Mapping[str, Any]],
        keep: Callable[[Mapping[str, str]], bool] | None = None,
    ) -> int:
        """Bring back tracks saved by `snapshot` for rules that still exist (a rule
        edited since keeps them), only those `keep` picks when it is given; returns
        how many were restored. A track already live is left as it is."""
        restored = 0
        for entry in saved:
            rule = self._rules.get(str(entry.get("rule", "")))
            if rule is None:
                continue
            try:
                track = Track.restore(rule, entry)
            except (KeyError, TypeError, ValueError) as exc:
                raise InvalidInput(
                    f"unreadable saved alarm state: {exc!r}", source="cep state", field=rule.name
                ) from exc
            if not rule.selects(track.labels) or (keep is not None and not keep(track.labels)):
                continue
            key = (rule.name, key_of(track.labels))
            if key in self._tracks:
                continue
            self._tracks[key] = track
            restored += 1
        return restored

    # --- helpers ----------------------------------------------------------

    def _track(self, rule: ThresholdRule, series: SeriesKey, labels: dict[str, str]) -> Track:
        key = (rule.name, series)
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = Track.new(rule, series_name(labels), labels)
        return track

    def _output(self, transitions: list[AlarmTransition], ignored: int) -> CepOutput:
        events: list[Event] = []
        log_lines: list[str] = []
        deliveries: list[Delivery] = []
        for transition in transitions:
            if not transition.notified:
                continue
            rule = self._rules.get(transition.rule)
            if rule is None:
                continue
            for index, action in enumerate(rule.actions):
                if not action.runs_on(transition.current):
                    continue
                if action.kind == ActionKind.EVENT:
                    events.append(_event(action, index, rule, transition))
                elif action.kind == ActionKind.WEBHOOK:
                    deliveries.append(Delivery(action.url, transition))
                else:
                    log_lines.append(
                        f"{transition.current.value} {rule.name} on {transition.entity}: "
                        f"{transition.reason}"
                    )
        return CepOutput(
            tuple(transitions), tuple(events), tuple(log_lines), ignored, tuple(deliveries)
        )


def scope_host(sample: Sample) -> str:
    """The host a sample is about: the entity itself for host samples."""
    return sample.entity if sample.kind == EntityKind.HOST else sample.host


def _event(
    action: RuleAction,
    index: int,
    rule: ThresholdRule,
    transition: AlarmTransition,
) -> Event:
    host = transition.labels.get("host", "")
    data: dict[str, Any] = {
        "goal": action.goal,
        "strategy": action.strategy,
        "parameters": dict(action.parameters),
        "scope": [host] if host else [],
        "rule": rule.name,
        "rule_version": rule.version,
        "entity": transition.entity,
        "meter": rule.meter,
        "value": transition.value,
        "state": transition.current.value,
        "severity": rule.severity.value,
        "reason": transition.reason,
        "labels": dict(transition.labels),
    }
    # A stable id lets a redelivered or replayed transition be recognised downstream.
    stable = uuid.uuid5(uuid.NAMESPACE_URL, f"opendrs:cep:{transition.dedup_key}:{index}")
    return Event(
        type=action.event_type,
        source=EVENT_SOURCE,
        time=transition.time,
        data=data,
        subject=transition.entity,
        id=stable.hex,
    )
