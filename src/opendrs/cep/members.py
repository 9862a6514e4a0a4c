"""The group members a CEP worker reduces for their groups' judges when the
engine is spread over workers: each member series' window and latest value,
kept by the worker owning the series, turned into news for the judge, and
saved apart from any group (entity `member:<series>`) so a takeover keeps it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opendrs.cep.group import Member, group_labels
from opendrs.cep.handoff import MemberNews
from opendrs.cep.rule import ThresholdRule
from opendrs.cep.series import series_name
from opendrs.cep.window import Window

# A member's saved state is kept under this prefix of its series name.
MEMBER_PREFIX = "member:"

Key = tuple[str, tuple[tuple[str, str], ...]]  # (rule, the series' sorted labels)
Removed = list[tuple[str, str]]  # (rule, entity) keys to delete from the saved state


def news_of(member: Member, name: str = "") -> MemberNews:
    return MemberNews(
        name or series_name(member.labels),
        member.labels,  # never changed in place: shared, not copied
        member.last_time,
        member.value,
        member.stale_at,
    )


class OwnMembers:
    """Members by (rule, series); `removed` collects the saved keys to delete."""

    def __init__(self, removed: Removed) -> None:
        self._members: dict[Key, Member] = {}
        self._names: dict[Key, str] = {}  # series names, worked out once per member
        self._changed: set[Key] = set()
        self._removed = removed

    def __len__(self) -> int:
        return len(self._members)

    def observe(
        self, rule: ThresholdRule, labels: dict[str, str], time: float, value: float
    ) -> tuple[dict[str, str], MemberNews] | tuple[()] | None:
        """A sample of a member: its group's labels and its news, () when the
        series is in no group, None when the sample is not newer than its last."""
        found = group_labels(rule, labels)
        if found is None:
            return ()
        key = _key(rule, labels)
        member = self._members.get(key)
        if member is None or member.rejoins(rule, time):
            member = self._members[key] = Member(labels, Window(rule.window))
        if time <= member.last_time:
            return None
        member.observe(rule, time, value)
        self._changed.add(key)
        return found, news_of(member, self._name(key, member))

    def end(
        self, rule: ThresholdRule, labels: Mapping[str, str], time: float
    ) -> tuple[dict[str, str], MemberNews] | None:
        """A stale marker: the member's group and news, None if nothing changed."""
        found = group_labels(rule, labels)
        key = _key(rule, labels)
        member = self._members.get(key)
        if found is None or member is None or time <= member.last_time:
            return None
        member.stale_at = time
        self._changed.add(key)
        return found, news_of(member, self._name(key, member))

    def expire(self, rules: Mapping[str, ThresholdRule], now: float) -> None:
        """Forget the members gone by `now` (one reporting again starts afresh anyway)."""
        for key, member in list(self._members.items()):
            if member.gone_at(rules[key[0]]) <= now:
                self._drop(key)

    def retire(self, names: Callable[[Mapping[str, str]], bool]) -> None:
        """Forget the members of a deleted entity (`names` picks their labels)."""
        for key in [k for k, m in self._members.items() if names(m.labels)]:
            self._drop(key)

    def adapt(self, rules: Mapping[str, ThresholdRule]) -> None:
        """Follow reloaded rules: drop the members of rules gone (or no longer
        about groups), resize the windows of the others."""
        for key, member in list(self._members.items()):
            rule = rules.get(key[0])
            if rule is None or not rule.group_by:
                self._drop(key)
            elif member.window.length != rule.window:
                points = member.window.points
                member.window = Window(rule.window)
                member.window.points = points
                if points:
                    member.window.expire(points[-1][0])
                self._changed.add(key)

    def seed(
        self,
        rule: ThresholdRule,
        members: Iterable[Member],
        keep: Callable[[Mapping[str, str]], bool] | None,
    ) -> None:
        """Take over members a single engine kept inside a group's track (those
        `keep` picks, when it is given), windows included."""
        for member in members:
            if keep is not None and not keep(member.labels):
                continue
            key = _key(rule, member.labels)
            if key not in self._members and member.window.points:
                seeded = Member(dict(member.labels), Window(rule.window))
                seeded.window.points.extend(member.window.points)
                seeded.last_time = member.last_time
                seeded.value = member.value
                seeded.stale_at = member.stale_at
                self._members[key] = seeded
                self._changed.add(key)

    def forget(self, drop: Callable[[Mapping[str, str]], bool]) -> int:
        """Drop the members whose series `drop` picks, keeping their saved state."""
        gone = [key for key, member in self._members.items() if drop(member.labels)]
        for key in gone:
            del self._members[key]
            self._names.pop(key, None)
            self._changed.discard(key)
        return len(gone)

    def snapshot(
        self, rules: Mapping[str, ThresholdRule], only_dirty: bool
    ) -> list[dict[str, Any]]:
        """Saved-state entries (with `member: true`); with `only_dirty`, those
        changed since the last snapshot."""
        out: list[dict[str, Any]] = []
        for key in sorted(self._changed if only_dirty else self._members):
            member = self._members[key]
            out.append(
                {
                    "rule": key[0],
                    "version": rules[key[0]].version,
                    "entity": MEMBER_PREFIX + series_name(member.labels),
                    "member": True,
                    **member.snapshot(),
                }
            )
        self._changed.clear()
        return out

    def restore(
        self,
        rule: ThresholdRule,
        entry: Mapping[str, Any],
        keep: Callable[[Mapping[str, str]], bool] | None,
    ) -> bool:
        """Bring back one saved member (a KeyError, TypeError or ValueError says
        the entry is unreadable); False when `keep` refuses it or it is live."""
        member = Member.restore(rule, entry)
        if keep is not None and not keep(member.labels):
            return False
        key = _key(rule, member.labels)
        if key in self._members:
            return False
        self._members[key] = member
        return True

    def _name(self, key: Key, member: Member) -> str:
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = series_name(member.labels)
        return name

    def _drop(self, key: Key) -> None:
        member = self._members.pop(key)
        self._names.pop(key, None)
        self._changed.discard(key)
        self._removed.append((key[0], MEMBER_PREFIX + series_name(member.labels)))


def _key(rule: ThresholdRule, labels: Mapping[str, str]) -> Key:
    return rule.name, tuple(sorted(labels.items()))
