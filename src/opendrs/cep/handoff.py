"""What CEP workers hand each other when a rule joins entities owned by
different workers: a group member's reduced state, sent to the worker that
judges the group, and a pattern half that happened, sent to the worker that
judges the pattern's key. Also where a key is judged (`placement`), and the
JSON form both travel in."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opendrs.cep.series import entity_of, series_name
from opendrs.domain.errors import InvalidInput

SOURCE = "cep handoff"


def placement(labels: Mapping[str, str]) -> str:
    """The name whose partition decides which worker holds a key: the entity the
    labels name (so a host's own series, its `group_by: [host]` group and its
    `on: [host]` pattern live together), else the labels themselves."""
    entity, _, _ = entity_of(labels)
    return entity or series_name(labels)


@dataclass(frozen=True, slots=True)
class MemberNews:
    """A group member as its owner sees it: its latest reduced value, when it last
    reported and, if it ended, when."""

    name: str
    labels: Mapping[str, str]
    last_time: float
    value: float | None
    stale_at: float | None = None


@dataclass(frozen=True, slots=True)
class GroupNews:
    """One batch's news of one group; `judge_at` is when the group is judged
    (None: only stale markers, nothing is judged)."""

    rule: str
    group: Mapping[str, str]
    members: tuple[MemberNews, ...]
    judge_at: float | None

    @property
    def place(self) -> str:
        return placement(self.group)


@dataclass(frozen=True, slots=True)
class HalfNews:
    """A half of a pattern that happened. `role` is cep.pattern.Role's value;
    `source` is the alarm's entity when the half is an alarm of a named rule, and
    `firing` whether that alarm still fires underneath after the batch."""

    time: float
    role: int
    labels: Mapping[str, str]
    value: float | None
    what: str
    source: str = ""
    firing: bool = False


@dataclass(frozen=True, slots=True)
class PatternNews:
    """The halves of one pattern rule that happened on one key in one batch."""

    rule: str
    key: Mapping[str, str]
    halves: tuple[HalfNews, ...]

    @property
    def place(self) -> str:
        return placement(self.key)


News = GroupNews | PatternNews


def news_to_dict(news: Sequence[News]) -> dict[str, Any]:
    groups: list[dict[str, Any]] = []
    patterns: list[dict[str, Any]] = []
    for item in news:
        if isinstance(item, GroupNews):
            groups.append(
                {
                    "rule": item.rule,
                    "group": dict(item.group),
                    "judge_at": item.judge_at,
                    "members": [
                        {
                            "name": m.name,
                            "labels": dict(m.labels),
                            "last_time": m.last_time,
                            "value": m.value,
                            "stale_at": m.stale_at,
                        }
                        for m in item.members
                    ],
                }
            )
        else:
            patterns.append(
                {
                    "rule": item.rule,
                    "key": dict(item.key),
                    "halves": [
                        {
                            "time": h.time,
                            "role": h.role,
                            "labels": dict(h.labels),
                            "value": h.value,
                            "what": h.what,
                            "source": h.source,
                            "firing": h.firing,
                        }
                        for h in item.halves
                    ],
                }
            )
    return {"groups": groups, "patterns": patterns}


def news_from_dict(data: Mapping[str, Any]) -> list[News]:
    """The news a handoff event carries; InvalidInput naming the bad field."""
    out: list[News] = []
    where = "groups"
    try:
        for index, raw in enumerate(data.get("groups", [])):
            where = f"groups.{index}"
            out.append(
                GroupNews(
                    rule=_text(raw["rule"]),
                    group=_labels(raw["group"]),
                    judge_at=_time_or_none(raw.get("judge_at")),
                    members=tuple(
                        MemberNews(
                            name=_text(m["name"]),
                            labels=_labels(m["labels"]),
                            last_time=_time(m["last_time"]),
                            value=_number_or_none(m.get("value")),
                            stale_at=_time_or_none(m.get("stale_at")),
                        )
                        for m in raw["members"]
                    ),
                )
            )
        for index, raw in enumerate(data.get("patterns", [])):
            where = f"patterns.{index}"
            out.append(
                PatternNews(
                    rule=_text(raw["rule"]),
                    key=_labels(raw["key"]),
                    halves=tuple(
                        HalfNews(
                            time=_time(h["time"]),
                            role=int(h["role"]),
                            labels=_labels(h["labels"]),
                            value=_number_or_none(h.get("value")),
                            what=str(h.get("what", "")),
                            source=str(h.get("source", "")),
                            firing=bool(h.get("firing", False)),
                        )
                        for h in raw["halves"]
                    ),
                )
            )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"unreadable handoff: {exc!r}", source=SOURCE, field=where) from exc
    return out


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _labels(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected labels as a mapping, got {value!r}")
    return {str(k): str(v) for k, v in value.items()}


def _time(value: Any) -> float:
    found = float(value)
    if not math.isfinite(found):
        raise ValueError(f"expected a finite time, got {value!r}")
    return found


def _time_or_none(value: Any) -> float | None:
    return None if value is None else _time(value)


def _number_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
