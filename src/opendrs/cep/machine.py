"""The alarm state machine of one (rule, series): ok / pending / alarm / no_data
underneath, flapping on top (while it flaps, changes are recorded but held), and
the bookkeeping (hold and clear timers, N-of-M hits, window) that survives a
restart through `snapshot` / `restore`."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from opendrs.cep.group import Member
from opendrs.cep.rule import MissingPolicy, ThresholdRule
from opendrs.cep.window import Window
from opendrs.domain.alarm import Alarm, AlarmState, AlarmTransition

_OK_LIKE = frozenset({AlarmState.OK, AlarmState.PENDING})


def _level(state: AlarmState) -> AlarmState:
    """What a state announces: pending announces nothing beyond ok."""
    return AlarmState.OK if state in _OK_LIKE else state


@dataclass(slots=True)
class Track:
    """Everything kept for one (rule, series). `alarm.state` is what is shown
    (flapping included), `base` what the condition says underneath."""

    alarm: Alarm
    labels: dict[str, str]
    window: Window
    base: AlarmState = AlarmState.OK
    last_time: float = -math.inf
    active_since: float | None = None
    clear_since: float | None = None
    clear_count: int = 0
    recent: deque[bool] = field(default_factory=deque)
    flips: deque[float] = field(default_factory=deque)
    announced: AlarmState = AlarmState.OK
    stale_at: float | None = None
    dirty: bool = True
    # A group rule's members by series name (see cep/group.py).
    members: dict[str, Member] = field(default_factory=dict)
    # A followed_by rule's pending `first` and latest `then` (see cep/pattern.py).
    first_at: float | None = None
    then_at: float | None = None
    # Spread over workers: the alarms of a pattern's `first` rule firing on the key.
    firing: set[str] = field(default_factory=set)
    left_at: float | None = None  # when the latest of them stopped firing
    # What kind of key the track is for (see `shape_of`): a rule edited into
    # another kind does not inherit the old tracks.
    shape: str = ""

    @classmethod
    def new(cls, rule: ThresholdRule, entity: str, labels: dict[str, str]) -> Track:
        alarm = Alarm(
            rule=rule.name,
            entity=entity,
            severity=rule.severity,
            labels={**labels, **rule.labels},
        )
        track = cls(alarm=alarm, labels=labels, window=Window(rule.window), shape=shape_of(rule))
        track.recent = deque(maxlen=rule.n_of_m[1] if rule.n_of_m else 1)
        return track

    def adapt(self, rule: ThresholdRule) -> None:
        """Follow an edited rule without losing state: same timers, same samples."""
        if self.window.length != rule.window:
            kept = self.window.points
            self.window = Window(rule.window)
            self.window.points = kept
            if kept:
                self.window.expire(kept[-1][0])
            for member in self.members.values():
                points = member.window.points
                member.window = Window(rule.window)
                member.window.points = points
                if points:
                    member.window.expire(points[-1][0])
        size = rule.n_of_m[1] if rule.n_of_m else 1
        if self.recent.maxlen != size:
            self.recent = deque(self.recent, maxlen=size)
        self.alarm = replace(
            self.alarm, severity=rule.severity, labels={**self.labels, **rule.labels}
        )
        self.dirty = True

    # --- persistence ------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able picture of the track (the rule is kept apart)."""
        return {
            "entity": self.alarm.entity,
            "labels": dict(self.labels),
            "state": self.alarm.state.value,
            "since": self.alarm.since,
            "value": self.alarm.value,
            "base": self.base.value,
            "last_time": None if math.isinf(self.last_time) else self.last_time,
            "active_since": self.active_since,
            "clear_since": self.clear_since,
            "clear_count": self.clear_count,
            "recent": list(self.recent),
            "flips": list(self.flips),
            "announced": self.announced.value,
            "stale_at": self.stale_at,
            "window": [list(p) for p in self.window.points],
            **(
                {"members": {n: m.snapshot() for n, m in self.members.items()}}
                if self.members
                else {}
            ),
            **({"shape": self.shape} if self.shape else {}),
            **({"first_at": self.first_at} if self.first_at is not None else {}),
            **({"then_at": self.then_at} if self.then_at is not None else {}),
            **({"firing": sorted(self.firing)} if self.firing else {}),
            **({"left_at": self.left_at} if self.left_at is not None else {}),
        }

    @classmethod
    def restore(cls, rule: ThresholdRule, saved: Mapping[str, Any]) -> Track:
        track = cls.new(
            rule, str(saved["entity"]), {str(k): str(v) for k, v in saved["labels"].items()}
        )
        value = saved.get("value")
        track.alarm = replace(
            track.alarm,
            state=AlarmState(saved["state"]),
            since=float(saved["since"]),
            value=None if value is None else float(value),
        )
        track.base = AlarmState(saved["base"])
        last = saved.get("last_time")
        track.last_time = -math.inf if last is None else float(last)
        track.active_since = _opt_float(saved.get("active_since"))
        track.clear_since = _opt_float(saved.get("clear_since"))
        track.clear_count = int(saved.get("clear_count", 0))
        track.recent.extend(bool(x) for x in saved.get("recent", []))
        track.flips.extend(float(x) for x in saved.get("flips", []))
        track.announced = AlarmState(saved.get("announced", "ok"))
        track.stale_at = _opt_float(saved.get("stale_at"))
        for t, v in saved.get("window", []):
            track.window.points.append((float(t), float(v)))
        for name, member in saved.get("members", {}).items():
            track.members[str(name)] = Member.restore(rule, member)
        track.first_at = _opt_float(saved.get("first_at"))
        track.then_at = _opt_float(saved.get("then_at"))
        track.firing = {str(x) for x in saved.get("firing", [])}
        track.left_at = _opt_float(saved.get("left_at"))
        track.shape = str(saved.get("shape", ""))
        track.dirty = False
        return track


def shape_of(rule: ThresholdRule) -> str:
    """`group:aggregate`, `followed_by:host`, or empty for a rule on single series."""
    if rule.followed_by is not None:
        return "followed_by:" + ",".join(rule.followed_by.on)
    if rule.group_by:
        return "group:" + ",".join(rule.group_by)
    return ""


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


class Stepper:
    """Moves tracks of one rule; every change of state comes back as transitions."""

    def __init__(self, rule: ThresholdRule) -> None:
        self.rule = rule

    # --- inputs -----------------------------------------------------------

    def observe(self, track: Track, time: float, value: float) -> list[AlarmTransition]:
        """One new sample of the series (times strictly increase)."""
        rule = self.rule
        track.last_time = time
        track.stale_at = None
        track.window.add(time, value)
        return self.judge(track, time, track.window.reduce(rule.aggregate))

    def judge(self, track: Track, time: float, aggregated: float | None) -> list[AlarmTransition]:
        """Evaluate an aggregated value (a group's comes from its members)."""
        rule = self.rule
        if aggregated is None:
            return self.settle(track, time)
        seen = aggregated * rule.scale
        breach = rule.breaches(seen)
        if rule.n_of_m is not None:
            track.recent.append(breach)
        out = self._evaluate(track, time, seen, breach)
        out.extend(self.settle(track, time))
        return out

    def end(self, track: Track, time: float) -> None:
        """A staleness marker: the series has stopped at `time`."""
        track.stale_at = time
        track.dirty = True

    def absent(self, track: Track, now: float) -> list[AlarmTransition]:
        """Apply the missing-data policy if the series has been silent long enough."""
        rule = self.rule
        policy = rule.missing.policy
        out: list[AlarmTransition] = []
        if policy != MissingPolicy.KEEP:
            gone_at = track.stale_at
            if gone_at is None and track.last_time + rule.missing.after <= now:
                gone_at = track.last_time + rule.missing.after
            if gone_at is not None and gone_at <= now:
                if policy == MissingPolicy.NO_DATA:
                    out = self._no_data(track, gone_at)
                else:
                    out = self._breaching_absence(track, gone_at, now)
        out.extend(self.settle(track, now))
        return out

    def retire(self, track: Track, time: float, reason: str) -> list[AlarmTransition]:
        """The entity is gone: resolve what is shown, if anything is."""
        if track.alarm.state == AlarmState.OK:
            return []
        previous = track.alarm.state
        held = _level(track.announced) == AlarmState.OK
        track.base = AlarmState.OK
        return [
            self._show(track, AlarmState.OK, time, None, reason, {}, held=held, previous=previous)
        ]

    def settle(self, track: Track, now: float) -> list[AlarmTransition]:
        """End flapping once `within` has passed without a change underneath."""
        flapping = self.rule.flapping
        if flapping is None or track.alarm.state != AlarmState.FLAPPING:
            return []
        last = track.flips[-1] if track.flips else -math.inf
        if now - last < flapping.within:
            return []
        when = max(last + flapping.within, track.alarm.since)
        base = track.base
        held = base == AlarmState.PENDING or _level(base) == _level(track.announced)
        reason = f"settled after flapping: {base.value} for {flapping.within:g}s"
        track.flips.clear()
        return [self._show(track, base, when, track.alarm.value, reason, {}, held=held)]

    # --- the machine ------------------------------------------------------

    def _evaluate(
        self, track: Track, time: float, seen: float, breach: bool
    ) -> list[AlarmTransition]:
        rule = self.rule
        details = self._details(track, seen)
        if track.base == AlarmState.ALARM:
            if rule.holds(seen):
                if track.clear_since is not None:
                    track.clear_since = None
                    track.clear_count = 0
                    track.dirty = True
                return []
            if track.clear_since is None:
                track.clear_since = time
            track.clear_count += 1
            track.dirty = True
            if time - track.clear_since < rule.clear_for or track.clear_count < rule.clear_samples:
                return []
            reason = (
                f"{rule.describe()} cleared: {seen:g} past {rule.clear_limit:g} "
                f"for {time - track.clear_since:g}s and {track.clear_count} sample(s)"
            )
            self._reset(track)
            return self.move(track, AlarmState.OK, time, seen, reason, details)
        if not breach:
            if track.active_since is not None:
                track.active_since = None
                track.dirty = True
            if track.base == AlarmState.OK:
                return []
            reason = f"{rule.describe()} does not hold, most recent: {seen:g}"
            return self.move(track, AlarmState.OK, time, seen, reason, details)
        if track.active_since is None:
            track.active_since = time
            track.dirty = True
        if rule.n_of_m is not None:
            hits = sum(track.recent)
            n, m = rule.n_of_m
            met = hits >= n
            progress = f"{hits} of the last {m} samples (needs {n})"
        else:
            held_for = time - track.active_since
            met = held_for >= rule.for_seconds
            progress = f"for {held_for:g}s of {rule.for_seconds:g}s"
        wanted = AlarmState.ALARM if met else AlarmState.PENDING
        if wanted == track.base:
            return []
        reason = f"{rule.describe()} {progress}, most recent: {seen:g}"
        return self.move(track, wanted, time, seen, reason, details)

    def _no_data(self, track: Track, when: float) -> list[AlarmTransition]:
        if track.base == AlarmState.NO_DATA:
            return []
        self._reset(track)
        silent = (
            "ended (stale marker)"
            if track.stale_at is not None
            else (f"sent nothing for {self.rule.missing.after:g}s")
        )
        reason = f"{self.rule.meter} {silent}"
        return self.move(track, AlarmState.NO_DATA, when, None, reason, {"missing": "no_data"})

    def _breaching_absence(self, track: Track, gone_at: float, now: float) -> list[AlarmTransition]:
        rule = self.rule
        if track.base == AlarmState.ALARM:
            if track.clear_since is not None:
                track.clear_since = None
                track.clear_count = 0
                track.dirty = True
            return []
        if track.active_since is None:
            track.active_since = gone_at
            track.dirty = True
        due = track.active_since + (0.0 if rule.n_of_m is not None else rule.for_seconds)
        wanted = AlarmState.ALARM if due <= now else AlarmState.PENDING
        if wanted == track.base:
            return []
        when = max(due, gone_at) if wanted == AlarmState.ALARM else gone_at
        reason = f"{rule.meter} absent since {gone_at:g}, counted as breaching"
        return self.move(track, wanted, when, None, reason, {"missing": "breaching"})

    def _reset(self, track: Track) -> None:
        track.active_since = None
        track.clear_since = None
        track.clear_count = 0
        track.recent.clear()
        track.dirty = True

    def _details(self, track: Track, seen: float) -> dict[str, Any]:
        rule = self.rule
        return {
            "aggregate": rule.aggregate.value,
            "window": rule.window,
            "values": track.window.values()[-32:]
            if not track.members
            else {n: m.value for n, m in sorted(track.members.items())[:32]},
            "seen": seen,
            "op": rule.op.value,
            "threshold": rule.threshold,
            "clear_threshold": rule.clear_threshold,
        }

    def move(
        self,
        track: Track,
        wanted: AlarmState,
        time: float,
        value: float | None,
        reason: str,
        details: dict[str, Any],
    ) -> list[AlarmTransition]:
        """Put the track in `wanted` (the machine or a pattern decides it): change
        the state underneath; show it, or hold it while flapping."""
        before = track.base
        track.base = wanted
        track.dirty = True
        flapping = self.rule.flapping
        if flapping is not None and _level(before) != _level(wanted):
            flips = track.flips
            flips.append(time)
            while flips and flips[0] <= time - flapping.within:
                flips.popleft()
            if track.alarm.state == AlarmState.FLAPPING:
                return []
            if len(flips) > flapping.transitions:
                reason = (
                    f"flapping: {len(flips)} transitions within {flapping.within:g}s; "
                    f"notifications held ({reason})"
                )
                return [
                    self._show(track, AlarmState.FLAPPING, time, value, reason, details, held=True)
                ]
        if track.alarm.state == AlarmState.FLAPPING:
            return []
        return [self._show(track, wanted, time, value, reason, details)]

    def _show(
        self,
        track: Track,
        wanted: AlarmState,
        time: float,
        value: float | None,
        reason: str,
        details: Mapping[str, Any],
        *,
        held: bool = False,
        previous: AlarmState | None = None,
    ) -> AlarmTransition:
        rule = self.rule
        before = track.alarm
        track.alarm = before.moved_to(wanted, time, value)
        track.dirty = True
        transition = AlarmTransition(
            rule=rule.name,
            entity=before.entity,
            previous=previous or before.state,
            current=wanted,
            time=time,
            value=value,
            severity=rule.severity,
            source=before.source,
            reason=reason,
            labels=before.labels,
            rule_version=rule.version,
            details=details,
            held=held,
            annotations=rule.annotations,
        )
        if transition.notified:
            track.announced = wanted
        elif wanted == AlarmState.OK and not held:
            track.announced = AlarmState.OK
        return transition
