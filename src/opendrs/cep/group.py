"""Group rules: the members of one group (every series sharing the rule's
`group_by` labels), each reduced to its own `aggregate` over its window, and
the one value `group_aggregate` makes of the members still reporting."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opendrs.cep.rule import Aggregate, ThresholdRule
from opendrs.cep.window import Window


@dataclass(slots=True)
class Member:
    """One series of a group: its window, its latest reduced value, and when it
    last reported (or was marked stale)."""

    labels: dict[str, str]
    window: Window
    last_time: float = -math.inf
    value: float | None = None
    stale_at: float | None = None

    def observe(self, rule: ThresholdRule, time: float, value: float) -> None:
        self.window.add(time, value)
        self.last_time = time
        self.stale_at = None
        self.value = self.window.reduce(rule.aggregate)

    def rejoins(self, rule: ThresholdRule, time: float) -> bool:
        """Whether a sample at `time` finds the member gone from its group (silent,
        or ended): it then starts afresh, whether its leaving was noticed or not."""
        return time > self.last_time and self.gone_at(rule) <= time

    def gone_at(self, rule: ThresholdRule) -> float:
        """When the member drops out of its group: its stale marker, else
        `missing.after` past its last sample."""
        if self.stale_at is not None:
            return self.stale_at
        return self.last_time + rule.missing.after

    def snapshot(self) -> dict[str, Any]:
        return {
            "labels": dict(self.labels),
            "last_time": None if math.isinf(self.last_time) else self.last_time,
            "value": self.value,
            "stale_at": self.stale_at,
            "window": [list(p) for p in self.window.points],
        }

    @classmethod
    def restore(cls, rule: ThresholdRule, saved: Mapping[str, Any]) -> Member:
        member = cls({str(k): str(v) for k, v in saved["labels"].items()}, Window(rule.window))
        last = saved.get("last_time")
        member.last_time = -math.inf if last is None else float(last)
        value = saved.get("value")
        member.value = None if value is None else float(value)
        stale = saved.get("stale_at")
        member.stale_at = None if stale is None else float(stale)
        for t, v in saved.get("window", []):
            member.window.points.append((float(t), float(v)))
        return member


def group_labels(rule: ThresholdRule, labels: Mapping[str, str]) -> dict[str, str] | None:
    """The group a series belongs to; None when it lacks a `group_by` label."""
    out: dict[str, str] = {}
    for name in rule.group_by:
        value = labels.get(name)
        if not value:
            return None
        out[name] = value
    return out


def group_name(labels: Mapping[str, str]) -> str:
    """The alarm's entity: `aggregate=agg1` (several labels joined by commas)."""
    return ",".join(f"{k}={v}" for k, v in labels.items())


def drop_silent(rule: ThresholdRule, members: dict[str, Member], now: float) -> float | None:
    """Remove the members gone by `now`; the latest time one of them left, if any did."""
    left: float | None = None
    for name in [n for n, m in members.items() if m.gone_at(rule) <= now]:
        gone = members.pop(name).gone_at(rule)
        left = gone if left is None else max(left, gone)
    return left


def group_value(rule: ThresholdRule, members: Mapping[str, Member]) -> float | None:
    """`group_aggregate` of the members' values; None when no member has one."""
    values = [m.value for m in members.values() if m.value is not None]
    if not values:
        return None
    how = rule.group_aggregate
    if how == Aggregate.COUNT:
        return float(len(values))
    if how == Aggregate.SUM:
        return sum(values)
    if how == Aggregate.MAX:
        return max(values)
    if how == Aggregate.MIN:
        return min(values)
    return sum(values) / len(values)
