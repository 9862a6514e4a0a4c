"""The rule engine: routes samples to the rules that select their series, keeps
one alarm state machine per (rule, series) (per group for group rules, per key
for followed_by patterns), applies missing-data policies as time passes, and
reports the transitions, the events and the webhook calls that rule actions
produce. It is pure: the caller records, publishes and sends."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from opendrs.cep.group import Member, drop_silent, group_labels, group_name, group_value
from opendrs.cep.handoff import GroupNews, HalfNews, MemberNews, News, PatternNews, placement
from opendrs.cep.machine import Stepper, Track, shape_of
from opendrs.cep.members import OwnMembers
from opendrs.cep.pattern import Matcher, Occurrence, Role, check_references
from opendrs.cep.rule import ActionKind, RuleAction, ThresholdRule
from opendrs.cep.series import series_labels, series_name
from opendrs.cep.window import Window
from opendrs.domain.alarm import Alarm, AlarmState, AlarmTransition
from opendrs.domain.errors import InvalidInput
from opendrs.domain.event import Event
from opendrs.domain.sample import EntityKind, Sample

EVENT_SOURCE = "opendrs.cep"

SeriesKey = tuple[tuple[str, str], ...]
TrackKey = tuple[str, SeriesKey]
# (time, role, pattern rule, labels, value, what happened, the alarm's entity when
# it is an alarm, whether that alarm still fires underneath): one input of a pattern.
Happening = tuple[float, Role, ThresholdRule, Mapping[str, str], float | None, str, str, bool]
_Restored = TypeVar("_Restored")


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
    # Group members and pattern halves for keys another worker judges (see `spread`).
    handoffs: tuple[News, ...] = ()

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
        # followed_by rules, by the meter or the rule their halves listen to.
        self._matchers: dict[str, Matcher] = {}
        self._pattern_meters: dict[str, tuple[tuple[ThresholdRule, Role], ...]] = {}
        self._pattern_rules: dict[str, tuple[tuple[ThresholdRule, Role], ...]] = {}
        self._tracks: dict[TrackKey, Track] = {}
        self._removed: list[tuple[str, str]] = []  # (rule, entity) forgotten since `changes`
        # Spread over workers (see `spread`): who judges a key, the group members
        # this worker reduces for judges elsewhere, and what to hand them.
        self._owns: Callable[[str], bool] | None = None
        self._members = OwnMembers(self._removed)
        self._outbox: list[News] = []
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
        check_references(by_name.values())
        by_meter: dict[str, list[ThresholdRule]] = {}
        pattern_meters: dict[str, list[tuple[ThresholdRule, Role]]] = {}
        pattern_rules: dict[str, list[tuple[ThresholdRule, Role]]] = {}
        for rule in by_name.values():
            pattern = rule.followed_by
            if pattern is None:
                by_meter.setdefault(rule.meter, []).append(rule)
                continue
            for role, occurrence in ((Role.FIRST, pattern.first), (Role.THEN, pattern.then)):
                if occurrence.rule:
                    pattern_rules.setdefault(occurrence.rule, []).append((rule, role))
                else:
                    pattern_meters.setdefault(occurrence.meter, []).append((rule, role))
        kept: dict[TrackKey, Track] = {}
        for key, track in self._tracks.items():
            kept_rule = by_name.get(key[0])
            if kept_rule is not None and _fits(kept_rule, track):
                if kept_rule is not self._rules.get(key[0]):
                    track.adapt(kept_rule)
                kept[key] = track
            else:
                self._removed.append((key[0], track.alarm.entity))
        self._rules = by_name
        self._steppers = {name: Stepper(rule) for name, rule in by_name.items()}
        self._matchers = {
            name: Matcher(stepper)
            for name, stepper in self._steppers.items()
            if stepper.rule.followed_by is not None
        }
        self._by_meter = {meter: tuple(group) for meter, group in by_meter.items()}
        self._pattern_meters = {m: tuple(found) for m, found in pattern_meters.items()}
        self._pattern_rules = {r: tuple(found) for r, found in pattern_rules.items()}
        self._tracks = kept
        self._members.adapt(by_name)

    def spread(self, owns: Callable[[str], bool]) -> None:
        """Work as one of several workers: `owns(name)` says whether this worker
        judges the keys whose `placement` is `name`. A group rule's members are
        then reduced here and their news handed (in `CepOutput.handoffs`) to the
        group's judge, and a pattern's halves to its key's judge, unless that is
        this worker; `absorb` takes what other workers hand over."""
        first = self._owns is None
        self._owns = owns
        if first:
            for (name, _), track in self._tracks.items():
                rule = self._rules[name]
                if rule.group_by:
                    self._members.seed(rule, track.members.values(), None)

    def states(self) -> list[Alarm]:
        """The current alarm of every (rule, series) seen, ordered by key."""
        return [self._tracks[key].alarm for key in sorted(self._tracks)]

    # --- inputs -----------------------------------------------------------

    def process(self, samples: Iterable[Sample]) -> CepOutput:
        transitions: list[AlarmTransition] = []
        happenings: list[Happening] = []
        groups: dict[TrackKey, float] = {}  # touched groups, evaluated once per batch
        # spread: the news of the touched groups' members, by group
        news: dict[TrackKey, tuple[dict[str, str], dict[str, MemberNews]]] = {}
        ignored = 0
        for sample in samples:
            rules = self._by_meter.get(sample.meter, ())
            listeners = self._pattern_meters.get(sample.meter, ())
            if not rules and not listeners:
                continue
            if not math.isfinite(sample.value):
                ignored += len(rules) + len(listeners)
                continue
            labels = series_labels(sample)
            series = key_of(labels)
            for pattern_rule, role in listeners:
                half = _half(pattern_rule, role)
                if half.met_by(labels, sample.value):
                    what = f"{sample.meter} {sample.value:g} on {series_name(labels)}"
                    happenings.append(
                        (sample.time, role, pattern_rule, labels, sample.value, what, "", False)
                    )
            for rule in rules:
                if rule.selector and not rule.selects(labels):
                    continue
                if rule.group_by:
                    if self._owns is not None:
                        found = self._members.observe(rule, labels, sample.time, sample.value)
                        if found is None:
                            ignored += 1
                        elif found:
                            group, member = found
                            key = (rule.name, key_of(group))
                            news.setdefault(key, (group, {}))[1][member.name] = member
                            groups[key] = max(groups.get(key, sample.time), sample.time)
                        continue
                    group_key = self._observe_member(rule, labels, sample)
                    if group_key is None:
                        ignored += 1
                    elif group_key:
                        groups[group_key] = max(groups.get(group_key, sample.time), sample.time)
                    continue
                track = self._track(rule, series, labels)
                if sample.time <= track.last_time:
                    ignored += 1
                    continue
                transitions.extend(
                    self._steppers[rule.name].observe(track, sample.time, sample.value)
                )
        for key, time in sorted(groups.items()):
            if key in news:
                group, members = news[key]
                told = GroupNews(key[0], group, tuple(members.values()), time)
                transitions.extend(self._hand(told))
            else:
                transitions.extend(self._judge_group(key, time))
        transitions.extend(self._follow(transitions, happenings))
        return self._output(transitions, ignored)

    def absorb(self, news: Iterable[News]) -> CepOutput:
        """What other workers handed over (see `spread`): group members' news,
        judged here once per group, and pattern halves, matched here."""
        transitions: list[AlarmTransition] = []
        halves: list[Happening] = []
        for item in news:
            if isinstance(item, GroupNews):
                transitions.extend(self._absorb_group(item))
                continue
            rule = self._rules.get(item.rule)
            if rule is None or rule.followed_by is None:
                continue  # a rule removed (or not yet loaded) here: nothing to match
            for half in item.halves:
                try:
                    role = Role(half.role)
                except ValueError:
                    raise InvalidInput(
                        f"unknown pattern role {half.role!r}", source="cep handoff", field="role"
                    ) from None
                halves.append(
                    (
                        half.time,
                        role,
                        rule,
                        half.labels,
                        half.value,
                        half.what,
                        half.source,
                        half.firing,
                    )
                )
        transitions.extend(self._follow(transitions, [], received=halves))
        return self._output(transitions, 0)

    def end_series(self, meter: str, labels: Mapping[str, str], time: float) -> None:
        """A staleness marker: the series stopped at `time` (its rules' missing-data
        policies apply from then on, at the next `advance`)."""
        series = key_of(labels)
        for rule in self._by_meter.get(meter, ()):
            if rule.group_by and self._owns is not None:
                ended = self._members.end(rule, labels, time)
                if ended is not None:
                    # nothing is judged at a stale marker: what it causes shows at `advance`
                    self._hand(GroupNews(rule.name, ended[0], (ended[1],), None))
                continue
            if rule.group_by:
                self._end_member(rule, labels, time)
                continue
            track = self._tracks.get((rule.name, series))
            if track is not None and time > track.last_time:
                self._steppers[rule.name].end(track, time)

    def advance(self, now: float) -> CepOutput:
        """Let time pass: silent series meet their missing-data policy and flapping
        alarms that have calmed down settle."""
        transitions: list[AlarmTransition] = []
        idle: list[TrackKey] = []
        self._members.expire(self._rules, now)
        for key, track in sorted(self._tracks.items()):
            name = key[0]
            matcher = self._matchers.get(name)
            if matcher is not None:
                transitions.extend(matcher.advance(track, now))
                if matcher.idle(track):
                    idle.append(key)
                continue
            if now < track.last_time:
                continue
            if self._rules[name].group_by:
                transitions.extend(self._drop_members(key, track, now))
            transitions.extend(self._steppers[name].absent(track, now))
        for key in idle:
            self._removed.append((key[0], self._tracks.pop(key).alarm.entity))
        transitions.extend(self._follow(transitions, []))
        return self._output(transitions, 0)

    def retire(self, entity: str, time: float) -> CepOutput:
        """The entity (a deleted VM, a removed host) is gone: its alarms are resolved
        and forgotten instead of going to no_data."""
        transitions: list[AlarmTransition] = []
        self._members.retire(lambda labels: _names(labels, entity))
        for key in sorted(self._tracks):
            track = self._tracks[key]
            if track.members:
                gone = [n for n, m in track.members.items() if _names(m.labels, entity)]
                for name in gone:
                    del track.members[name]
                if gone:
                    track.dirty = True
                if gone and track.members:
                    rule = self._rules[key[0]]
                    when = max(time, track.last_time)
                    value = group_value(rule, track.members)
                    transitions.extend(self._steppers[key[0]].judge(track, when, value))
                    continue
                if not gone and not _names(track.labels, entity):
                    continue
            elif not _names(track.labels, entity):
                continue
            transitions.extend(
                self._steppers[key[0]].retire(track, time, f"{entity} was deleted: alarm retired")
            )
            del self._tracks[key]
            self._removed.append((key[0], track.alarm.entity))
        transitions.extend(self._follow(transitions, []))
        return self._output(transitions, 0)

    # --- persistence ------------------------------------------------------

    def snapshot(self, only_dirty: bool = False) -> list[dict[str, Any]]:
        """JSON-able state of the tracks (with their rule's name and version), and
        of the group members reduced here for a judge elsewhere (entity
        `member:<series>`); with `only_dirty`, just those changed since the last
        snapshot, which are marked clean."""
        out: list[dict[str, Any]] = []
        for (name, _), track in sorted(self._tracks.items()):
            if only_dirty and not track.dirty:
                continue
            track.dirty = False
            out.append({"rule": name, "version": self._rules[name].version, **track.snapshot()})
        out.extend(self._members.snapshot(self._rules, only_dirty))
        return out

    def changes(self) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """What to persist since the last call: changed tracks, forgotten (rule, entity)."""
        removed, self._removed = self._removed, []
        return self.snapshot(only_dirty=True), removed

    def forget(self, drop: Callable[[Mapping[str, str]], bool]) -> int:
        """Drop the tracks whose labels `drop` picks (a series', a group's or a
        pattern key's), and the group members reduced here whose series it
        picks, without resolving them (a worker letting a partition go: the next
        holder restores them)."""
        gone = [key for key, track in self._tracks.items() if drop(track.labels)]
        for key in gone:
            del self._tracks[key]
        return len(gone) + self._members.forget(drop)

    def restore(
        self,
        saved: Iterable[Mapping[str, Any]],
        keep: Callable[[Mapping[str, str]], bool] | None = None,
    ) -> int:
        """Bring back tracks saved by `snapshot` for rules that still exist (a rule
        edited since keeps them), only those `keep` picks when it is given; returns
        how many were restored. A track already live is left as it is. Members
        saved apart are restored only when spread; a single engine keeps its
        members inside their group's track."""
        restored = 0
        entries = list(saved)
        unseeded: list[Track] = []
        for entry in entries:
            rule = self._rules.get(str(entry.get("rule", "")))
            if rule is None or not entry.get("member"):
                continue
            if self._owns is None or not rule.group_by:
                continue
            if _restored(rule, entry, lambda r, e: self._members.restore(r, e, keep)):
                restored += 1
        for entry in entries:
            rule = self._rules.get(str(entry.get("rule", "")))
            if rule is None or entry.get("member"):
                continue
            track = _restored(rule, entry, Track.restore)
            if self._owns is not None and rule.group_by:
                # state saved by a single engine: its members' windows live on here
                self._members.seed(rule, track.members.values(), keep)
            if not _fits(rule, track) or (keep is not None and not keep(track.labels)):
                continue
            key = (rule.name, key_of(track.labels))
            if key in self._tracks:
                continue
            self._tracks[key] = track
            restored += 1
            if rule.followed_by is not None and "firing" not in entry:
                unseeded.append(track)
        for track in unseeded:
            # saved before patterns kept their firing alarms: those found here count
            pattern = self._rules[track.alarm.rule].followed_by
            if pattern is not None and pattern.first.rule and track.first_at is not None:
                track.firing = self._firing_on(pattern.first.rule, track.labels)
        return restored

    # --- helpers ----------------------------------------------------------

    def _track(self, rule: ThresholdRule, series: SeriesKey, labels: dict[str, str]) -> Track:
        key = (rule.name, series)
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = Track.new(rule, series_name(labels), labels)
        return track

    def _observe_member(
        self, rule: ThresholdRule, labels: dict[str, str], sample: Sample
    ) -> TrackKey | tuple[()] | None:
        """Update a group's member; its group's key, () when the series is in no
        group, None when the sample is not newer than the member's last."""
        found = group_labels(rule, labels)
        if found is None:
            return ()
        key = (rule.name, key_of(found))
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = Track.new(rule, group_name(found), found)
        name = series_name(labels)
        member = track.members.get(name)
        if member is None or member.rejoins(rule, sample.time):
            member = track.members[name] = Member(labels, Window(rule.window))
        if sample.time <= member.last_time:
            return None
        member.observe(rule, sample.time, sample.value)
        track.last_time = max(track.last_time, sample.time)
        track.stale_at = None
        track.dirty = True
        return key

    # --- spread over workers: members reduced here, groups and patterns judged
    # where their key's placement is held -----------------------------------

    def _hand(self, news: GroupNews) -> list[AlarmTransition]:
        """Judge the group here if this worker holds it, else hand the news over."""
        owns = self._owns
        if owns is None or owns(news.place):
            return self._absorb_group(news)
        self._outbox.append(news)
        return []

    def _absorb_group(self, news: GroupNews) -> list[AlarmTransition]:
        """Take members' news into their group's track; judge it when asked to."""
        rule = self._rules.get(news.rule)
        if rule is None or not rule.group_by or set(news.group) != set(rule.group_by):
            return []  # a rule removed or edited here since: its news means nothing
        key = (rule.name, key_of(news.group))
        track = self._tracks.get(key)
        if track is None:
            if news.judge_at is None:
                return []
            track = self._tracks[key] = Track.new(rule, group_name(news.group), dict(news.group))
        for told in news.members:
            member = track.members.get(told.name)
            if member is None:
                # the window stays with the member's own worker; the judge needs its value
                member = track.members[told.name] = Member(dict(told.labels), Window(0.0))
            elif told.last_time < member.last_time:
                continue  # older news overtaken by newer
            member.last_time = told.last_time
            member.value = told.value
            member.stale_at = told.stale_at
            if told.stale_at is None:
                track.last_time = max(track.last_time, told.last_time)
                track.stale_at = None
        track.dirty = True
        if news.judge_at is None:
            stale = [m.stale_at for m in news.members if m.stale_at is not None]
            if stale and all(m.stale_at is not None for m in track.members.values()):
                self._steppers[rule.name].end(track, max(stale))
            return []
        return self._judge_group(key, news.judge_at)

    def _judge_group(self, key: TrackKey, time: float) -> list[AlarmTransition]:
        track = self._tracks[key]
        rule = self._rules[key[0]]
        drop_silent(rule, track.members, time)
        return self._steppers[key[0]].judge(track, time, group_value(rule, track.members))

    def _drop_members(self, key: TrackKey, track: Track, now: float) -> list[AlarmTransition]:
        """Members silent past `missing.after` leave; the rest are judged again."""
        rule = self._rules[key[0]]
        left = drop_silent(rule, track.members, now)
        if left is None:
            return []
        track.dirty = True
        if not track.members:
            return []
        when = max(left, track.last_time)
        return self._steppers[key[0]].judge(track, when, group_value(rule, track.members))

    def _end_member(self, rule: ThresholdRule, labels: Mapping[str, str], time: float) -> None:
        found = group_labels(rule, labels)
        track = None if found is None else self._tracks.get((rule.name, key_of(found)))
        if track is None:
            return
        member = track.members.get(series_name(labels))
        if member is None or time <= member.last_time:
            return
        member.stale_at = time
        track.dirty = True
        if all(m.stale_at is not None for m in track.members.values()):
            self._steppers[rule.name].end(track, time)

    def _follow(
        self,
        transitions: list[AlarmTransition],
        happenings: list[Happening],
        received: Iterable[Happening] = (),
    ) -> list[AlarmTransition]:
        """Feed patterns what happened, in time order: alarms of the rules they
        name (firing, or no longer firing) and samples meeting their conditions.
        Spread, halves for keys judged elsewhere are handed over; `received`
        halves were handed to this worker and are matched here."""
        if not self._matchers:
            return []
        # Each half from an alarm says whether that alarm still fires underneath
        # once the batch is done: the key's judge (maybe another worker) keeps
        # the set of the `first` rule's alarms firing on the key.
        fires = self._firing_index(transitions)
        for t in transitions:
            for pattern_rule, role in self._pattern_rules.get(t.rule, ()):
                what = f"alarm {t.rule} on {t.entity}"
                firing = fires.get((t.rule, t.entity), False)
                if t.current == AlarmState.ALARM:
                    happenings.append(
                        (t.time, role, pattern_rule, t.labels, t.value, what, t.entity, firing)
                    )
                elif t.previous == AlarmState.ALARM and role == Role.FIRST:
                    happenings.append(
                        (t.time, Role.CLEARED, pattern_rule, t.labels, t.value, what, t.entity,
                         firing)
                    )  # fmt: skip
        local: list[Happening] = list(received)
        away: dict[TrackKey, tuple[ThresholdRule, dict[str, str], list[HalfNews]]] = {}
        for happening in happenings:
            rule, labels = happening[2], happening[3]
            pattern = rule.followed_by
            found = None if pattern is None else pattern.key(labels)
            owns = self._owns
            if found is None or owns is None or owns(placement(found)):
                local.append(happening)
                continue
            time, role, _, _, value, what, source, firing = happening
            half = HalfNews(time, int(role), dict(labels), value, what, source, firing)
            away.setdefault((rule.name, key_of(found)), (rule, found, []))[2].append(half)
        for key in sorted(away):
            rule, found, halves = away[key]
            halves.sort(key=lambda h: (h.time, h.role))
            self._outbox.append(PatternNews(rule.name, found, tuple(halves)))
        return self._match(local)

    def _match(self, happenings: list[Happening]) -> list[AlarmTransition]:
        out: list[AlarmTransition] = []
        ordered = sorted(happenings, key=lambda h: (h[0], h[1]))
        for time, role, rule, labels, value, what, source, firing in ordered:
            pattern = rule.followed_by
            found = None if pattern is None else pattern.key(labels)
            if pattern is None or found is None:
                continue
            matcher = self._matchers[rule.name]
            key = (rule.name, key_of(found))
            track = self._tracks.get(key)
            if role == Role.FIRST:
                if track is None:
                    track = self._tracks[key] = Track.new(rule, series_name(found), found)
                if source:
                    track.firing.add(source)
                matcher.first(track, time)
            elif track is None:
                continue
            elif role == Role.THEN:
                out.extend(matcher.then(track, time, value, what))
            else:
                # The incident is over when the last alarm of `first` on the key
                # stops, at the latest time one stopped: halves from several
                # workers may come out of time order.
                if not firing:
                    track.firing.discard(source)
                    track.left_at = time if track.left_at is None else max(track.left_at, time)
                    track.dirty = True
                if not track.firing:
                    out.extend(matcher.first_cleared(track, max(time, track.left_at or time)))
        return out

    def _firing_index(self, transitions: list[AlarmTransition]) -> dict[tuple[str, str], bool]:
        """Whether each alarm a pattern names among `transitions` fires underneath."""
        wanted = {t.rule for t in transitions if t.rule in self._pattern_rules}
        if not wanted:
            return {}
        return {
            (name, track.alarm.entity): track.base == AlarmState.ALARM
            for (name, _), track in self._tracks.items()
            if name in wanted
        }

    def _firing_on(self, rule: str, key: Mapping[str, str]) -> set[str]:
        """The entities whose alarm of `rule` with these label values fires underneath."""
        return {
            track.alarm.entity
            for (name, _), track in self._tracks.items()
            if name == rule
            and track.base == AlarmState.ALARM
            and all(track.alarm.labels.get(k) == v for k, v in key.items())
        }

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
        handoffs, self._outbox = tuple(self._outbox), []
        return CepOutput(
            tuple(transitions),
            tuple(events),
            tuple(log_lines),
            ignored,
            tuple(deliveries),
            handoffs,
        )


def _fits(rule: ThresholdRule, track: Track) -> bool:
    """Whether a track can stay with (an edit of) its rule: same kind of key,
    and for a single-series rule, a series it still selects."""
    shape = shape_of(rule)
    if shape != track.shape:
        return False
    if rule.followed_by is not None:
        return set(track.labels) == set(rule.followed_by.on)
    if rule.group_by:
        return set(track.labels) == set(rule.group_by)
    return rule.selects(track.labels)


def _restored(
    rule: ThresholdRule,
    entry: Mapping[str, Any],
    build: Callable[[ThresholdRule, Mapping[str, Any]], _Restored],
) -> _Restored:
    try:
        return build(rule, entry)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(
            f"unreadable saved alarm state: {exc!r}", source="cep state", field=rule.name
        ) from exc


def _names(labels: Mapping[str, str], entity: str) -> bool:
    """Whether a series' labels are about `entity` (itself, not a host's guest)."""
    if entity in (labels.get("instance"), labels.get("volume")):
        return True
    return labels.get("host") == entity and "instance" not in labels and "volume" not in labels


def _half(rule: ThresholdRule, role: Role) -> Occurrence:
    pattern = rule.followed_by
    if pattern is None:
        raise InvalidInput(f"rule {rule.name!r} has no followed_by", field="rules")
    return pattern.first if role == Role.FIRST else pattern.then


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
