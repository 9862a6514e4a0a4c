"""Unit tests of rules in a promtool-like file: series in expanding notation,
fed to the real engine on deterministic time, and the alarms and notifications
expected at named times compared with what the engine did.

    rule_files: [rules.yaml]        # relative to this file; or `rules:` inline
    tests:
      - name: low free RAM
        interval: 1m                # sample i is at i x interval, from 0
        input_series:
          - series: 'memory.free.percent{host="h1"}'
            values: '20 14x3 19x5'  # a+bxn, axn, _ (missing), _xn, stale
            deleted_at: 9m          # optional: the entity is deleted then
        expect:
          - at: 4m
            alarms: [...]           # every (rule, labels) not in state ok
            notifications: [...]    # sent in (previous `at`, this `at`]

An expectation checks `alarms` and `notifications` only when given (an empty
list asserts there are none)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, field_validator

from opendrs.cep.engine import CepEngine
from opendrs.cep.rule import ThresholdRule
from opendrs.cep.series import IDENTITY_LABELS, entity_of
from opendrs.domain.alarm import AlarmState, AlarmTransition
from opendrs.domain.errors import InvalidInput
from opendrs.domain.sample import Sample, SampleType
from opendrs.rulefiles.durations import Duration, format_duration
from opendrs.rulefiles.notation import Marker, Point, expand
from opendrs.rulefiles.schema import (
    RuleSpec,
    Spec,
    StateName,
    check_pattern_references,
    load_rule_file,
    rules_from_specs,
)
from opendrs.yamlfile import line_of, read_document, validate


class SeriesSpec(Spec):
    series: str
    values: str
    deleted_at: Duration | None = None

    @field_validator("values", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value


class AlarmSpec(Spec):
    rule: str
    labels: dict[str, str] = Field(default_factory=dict)
    state: StateName


class ExpectSpec(Spec):
    at: Duration
    alarms: list[AlarmSpec] | None = None
    notifications: list[AlarmSpec] | None = None


class CaseSpec(Spec):
    name: str = ""
    interval: Duration = 60.0
    input_series: list[SeriesSpec] = Field(default_factory=list)
    expect: list[ExpectSpec] = Field(default_factory=list)

    @field_validator("interval")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("interval must be > 0")
        return value


class TestFileSpec(Spec):
    rule_files: list[str] = Field(default_factory=list)
    rules: list[RuleSpec] = Field(default_factory=list)
    tests: list[CaseSpec] = Field(min_length=1)


# (rule, sorted labels, state): what an alarm or a notification is compared by.
Seen = tuple[str, tuple[tuple[str, str], ...], str]


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    failures: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(slots=True)
class FileResult:
    path: Path
    cases: list[CaseResult] = field(default_factory=list)
    error: str = ""

    @property
    def passed(self) -> int:
        return sum(1 for c in self.cases if c.passed)

    @property
    def failed(self) -> int:
        return sum(1 for c in self.cases if not c.passed) + (1 if self.error else 0)


_SERIES = re.compile(r"^\s*(?P<meter>[A-Za-z_:][\w.:-]*)\s*(?:\{(?P<labels>.*)\})?\s*$")
_LABEL = re.compile(r'\s*(?P<k>[A-Za-z_][\w.-]*)\s*=\s*"(?P<v>(?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse_series(
    text: str, *, source: str = "", field: str = "series"
) -> tuple[str, dict[str, str]]:
    """`memory.free.percent{host="h1"}` as (meter, labels)."""
    match = _SERIES.match(text)
    if match is None:
        raise InvalidInput(
            f'cannot read series {text!r}: expected meter{{label="value",...}}',
            source=source,
            field=field,
        )
    labels: dict[str, str] = {}
    inner = (match.group("labels") or "").strip()
    position = 0
    while position < len(inner):
        label = _LABEL.match(inner, position)
        if label is None or label.end() == position:
            raise InvalidInput(
                f"cannot read the labels of {text!r} at {inner[position:]!r}",
                source=source,
                field=field,
            )
        value = re.sub(r"\\(.)", r"\1", label.group("v"))
        labels[label.group("k")] = value
        position = label.end()
    return match.group("meter"), labels


@dataclass(slots=True)
class _Input:
    meter: str
    labels: dict[str, str]
    points: list[Point]
    deleted_at: float | None


def run_case(rules: list[ThresholdRule], case: CaseSpec, *, source: str = "") -> CaseResult:
    """Feed the case's series to a fresh engine and compare at every `at`."""
    inputs = [
        _Input(
            *parse_series(s.series, source=source, field=f"input_series.{i}.series"),
            expand(s.values, source=source, field=f"input_series.{i}.values"),
            s.deleted_at,
        )
        for i, s in enumerate(case.input_series)
    ]
    engine = CepEngine(rules)
    happened: list[AlarmTransition] = []
    interval = case.interval
    expects = sorted(case.expect, key=lambda e: e.at)
    end = expects[-1].at if expects else 0.0
    steps = int(end // interval + 1e-9) + 1
    retired: set[int] = set()
    failures: list[str] = []
    previous_at = -1.0
    expect_index = 0

    def check_until(limit: float) -> None:
        nonlocal expect_index, previous_at
        while expect_index < len(expects) and expects[expect_index].at < limit:
            expect = expects[expect_index]
            happened.extend(engine.advance(expect.at).transitions)
            failures.extend(_compare(engine, happened, expect, previous_at))
            previous_at = expect.at
            expect_index += 1

    for step in range(steps):
        now = step * interval
        check_until(now)
        for index, given in enumerate(inputs):
            if given.deleted_at is not None and index not in retired and given.deleted_at <= now:
                retired.add(index)
                entity, _, _ = entity_of(given.labels)
                happened.extend(engine.retire(entity, given.deleted_at).transitions)
        batch: list[Sample] = []
        for index, given in enumerate(inputs):
            if index in retired or step >= len(given.points):
                continue
            point = given.points[step]
            if point is Marker.STALE:
                engine.end_series(given.meter, given.labels, now)
            elif isinstance(point, float):
                batch.append(_sample(given, point, now))
        happened.extend(engine.process(batch).transitions)
        happened.extend(engine.advance(now).transitions)
    check_until(float("inf"))
    return CaseResult(case.name, tuple(failures))


def _sample(given: _Input, value: float, time: float) -> Sample:
    entity, kind, host = entity_of(given.labels)
    extra = {k: v for k, v in given.labels.items() if k not in IDENTITY_LABELS}
    return Sample(given.meter, entity, value, "", SampleType.GAUGE, time, kind, host, extra)


def _compare(
    engine: CepEngine, happened: list[AlarmTransition], expect: ExpectSpec, after: float
) -> list[str]:
    failures: list[str] = []
    when = format_duration(expect.at)
    if expect.alarms is not None:
        actual = Counter(
            (a.rule, _sorted(a.labels), a.state.value)
            for a in engine.states()
            if a.state != AlarmState.OK
        )
        wanted: Counter[Seen] = Counter(
            (e.rule, _sorted(e.labels), str(e.state)) for e in expect.alarms
        )
        if actual != wanted:
            failures.append(_difference(f"at {when}: alarms", wanted, actual))
    if expect.notifications is not None:
        sent = Counter(
            (t.rule, _sorted(t.labels), t.current.value)
            for t in happened
            if t.notified and after < t.time <= expect.at
        )
        wanted = Counter((e.rule, _sorted(e.labels), str(e.state)) for e in expect.notifications)
        if sent != wanted:
            failures.append(
                _difference(
                    f"at {when}: notifications in ({format_duration(max(after, 0))}, {when}]",
                    wanted,
                    sent,
                )
            )
    return failures


def _sorted(labels: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in dict(labels).items()))


def _show(seen: Counter[Seen]) -> str:
    if not seen:
        return "    (none)"
    lines = []
    for (rule, labels, state), count in sorted(seen.items()):
        inner = ", ".join(f'{k}="{v}"' for k, v in labels)
        times = f" x{count}" if count > 1 else ""
        lines.append(f"    {rule}{{{inner}}} {state}{times}")
    return "\n".join(lines)


def _difference(title: str, wanted: Counter[Seen], actual: Counter[Seen]) -> str:
    return f"{title}\n  expected:\n{_show(wanted)}\n  actual:\n{_show(actual)}"


def run_test_file(path: Path) -> FileResult:
    """Every test of one file; a file that cannot be read is one failure naming why."""
    result = FileResult(path)
    try:
        data, node = read_document(path)
        spec = validate(TestFileSpec, data, source=str(path), node=node)
        rules = _rules_of(path, spec, node)
        for index, case in enumerate(spec.tests):
            where = f"{path} line {line_of(node, ('tests', index))}"
            try:
                result.cases.append(run_case(rules, case, source=where))
            except InvalidInput as exc:
                result.cases.append(CaseResult(case.name or f"#{index}", (str(exc),)))
    except InvalidInput as exc:
        result.error = str(exc)
    return result


def _rules_of(path: Path, spec: TestFileSpec, node: yaml.Node | None) -> list[ThresholdRule]:
    seen: dict[str, str] = {}
    rules: list[ThresholdRule] = []
    for index, name in enumerate(spec.rule_files):
        target = (path.parent / name).resolve()
        if not target.is_file():
            raise InvalidInput(
                f"rule file {name!r} not found (looked for {target})",
                source=f"{path} line {line_of(node, ('rule_files', index))}",
                field=f"rule_files.{index}",
            )
        rules.extend(load_rule_file(target, seen))
    rules.extend(rules_from_specs(spec.rules, source=str(path), node=node, seen=seen))
    if not rules:
        raise InvalidInput("no rules: give rule_files or rules", source=str(path))
    check_pattern_references(rules, seen)
    return rules
