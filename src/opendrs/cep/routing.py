"""From notified transitions to the batches receivers get: inhibition (a host
that is down mutes its instances' alarms), grouping (by host, project...),
per-group rate limits, and a dedup key on every batch so a redelivery is
recognised downstream. Pure: time comes in as `now`."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from opendrs.domain.alarm import AlarmState, AlarmTransition
from opendrs.domain.errors import InvalidInput

ANY = "*"  # a matcher value meaning "the label is present, whatever its value"
_FIRING = frozenset({AlarmState.ALARM, AlarmState.NO_DATA})


def matches(matchers: Mapping[str, str], rule: str, labels: Mapping[str, str]) -> bool:
    """Label equality (`*`: present); the key `rule` matches the rule's name."""
    for key, wanted in matchers.items():
        have = rule if key == "rule" else labels.get(key)
        if have is None or (wanted != ANY and have != wanted):
            return False
    return True


@dataclass(frozen=True, slots=True)
class Inhibition:
    """While an alarm matching `source` fires, notifications matching `target`
    with the same values of the `equal` labels are muted. The default mutes a
    host's instance alarms while the host's `source` alarm fires."""

    source: Mapping[str, str]
    target: Mapping[str, str] = field(default_factory=lambda: {"instance": ANY})
    equal: tuple[str, ...] = ("host",)

    def __post_init__(self) -> None:
        if not self.source:
            raise InvalidInput("an inhibition needs source matchers", field="source")


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    """`group_by` labels make one batch per distinct value set; at most
    `max_per_group` alarms (firing ones; resolutions of announced alarms always
    pass) are announced per group within `per` seconds."""

    group_by: tuple[str, ...] = ("host",)
    max_per_group: int = 20
    per: float = 300.0
    inhibitions: tuple[Inhibition, ...] = ()

    def __post_init__(self) -> None:
        if self.max_per_group < 1 or self.per <= 0:
            raise InvalidInput(
                "rate limit needs max_per_group >= 1 and per > 0", field="max_per_group"
            )


GroupKey = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Batch:
    """Notifications of one group, sent together."""

    group: GroupKey
    notifications: tuple[AlarmTransition, ...]

    @property
    def dedup_key(self) -> str:
        """The same batch (after a redelivery or a restart) has the same key."""
        digest = hashlib.sha256()
        for t in self.notifications:
            digest.update(t.dedup_key.encode())
            digest.update(b"\0")
        return digest.hexdigest()[:32]

    @property
    def firing(self) -> bool:
        return any(t.current in _FIRING for t in self.notifications)


@dataclass(slots=True)
class RoutingCounts:
    routed: int = 0
    muted: int = 0
    limited: int = 0
    released: int = 0


class NotificationRouter:
    """Keeps what fires (for inhibition) and which alarms were never announced
    (muted or rate-limited), so their resolution is not announced either. It
    starts knowing nothing: after a restart every resolution passes."""

    def __init__(self, policy: RoutingPolicy | None = None) -> None:
        self.policy = policy or RoutingPolicy()
        self.counts = RoutingCounts()
        self._firing: dict[tuple[str, str], AlarmTransition] = {}
        self._suppressed: set[tuple[str, str]] = set()
        self._muted: dict[tuple[str, str], AlarmTransition] = {}
        self._sent: dict[GroupKey, deque[float]] = {}

    def route(self, transitions: Iterable[AlarmTransition], now: float) -> list[Batch]:
        """The batches to send for these transitions (pass all of them, notified or
        not, so inhibition knows what fires), plus muted alarms whose source cleared."""
        notified: list[AlarmTransition] = []
        for t in transitions:
            key = (t.rule, t.entity)
            if t.current in _FIRING or t.current == AlarmState.FLAPPING:
                self._firing[key] = t
            else:
                self._firing.pop(key, None)
            if t.notified:
                notified.append(t)
        outgoing: list[AlarmTransition] = []
        for t in notified:
            key = (t.rule, t.entity)
            if t.current in _FIRING:
                if self._inhibited(t):
                    self._muted[key] = t
                    self._suppressed.add(key)
                    self.counts.muted += 1
                    continue
            else:
                self._muted.pop(key, None)
                if key in self._suppressed:
                    self._suppressed.discard(key)
                    continue  # its firing was never told: its end is not news either
            outgoing.append(t)
        outgoing.extend(self._released())
        return self._batches(outgoing, now)

    def _inhibited(self, t: AlarmTransition) -> bool:
        for rule in self.policy.inhibitions:
            if not matches(rule.target, t.rule, t.labels):
                continue
            for key, source in self._firing.items():
                if key == (t.rule, t.entity) or source.current not in _FIRING:
                    continue
                if not matches(rule.source, source.rule, source.labels):
                    continue
                if all(source.labels.get(k, "") == t.labels.get(k, "") for k in rule.equal):
                    return True
        return False

    def _released(self) -> list[AlarmTransition]:
        """Muted alarms whose source is no longer firing, announced now."""
        out: list[AlarmTransition] = []
        for key, t in list(self._muted.items()):
            if not self._inhibited(t):
                del self._muted[key]
                out.append(t)
                self.counts.released += 1
        return out

    def _batches(self, outgoing: list[AlarmTransition], now: float) -> list[Batch]:
        policy = self.policy
        groups: dict[GroupKey, list[AlarmTransition]] = {}
        for t in outgoing:
            key = (t.rule, t.entity)
            group = tuple((label, t.labels.get(label, "")) for label in policy.group_by)
            if t.current in _FIRING:
                sent = self._sent.setdefault(group, deque())
                while sent and sent[0] <= now - policy.per:
                    sent.popleft()
                if len(sent) >= policy.max_per_group:
                    self._suppressed.add(key)
                    self.counts.limited += 1
                    continue
                sent.append(now)
                self._suppressed.discard(key)
            groups.setdefault(group, []).append(t)
            self.counts.routed += 1
        return [Batch(group, tuple(items)) for group, items in sorted(groups.items())]
