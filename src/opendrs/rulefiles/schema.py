"""The rule language, as pydantic models of a rule file (`rules: [...]`), and
their translation into cep rules with every error naming file, line and field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from opendrs.cep.pattern import FollowedBy, Occurrence, check_references
from opendrs.cep.rule import (
    ActionKind,
    Aggregate,
    Flapping,
    Missing,
    MissingPolicy,
    Op,
    RuleAction,
    ThresholdRule,
)
from opendrs.domain.alarm import AlarmState, Severity
from opendrs.domain.errors import InvalidInput
from opendrs.rulefiles.durations import Duration
from opendrs.yamlfile import line_of, read_document, validate

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]*$")

StateName = Literal["ok", "pending", "alarm", "no_data", "flapping"]
OpName = Literal[">", ">=", "<", "<=", "==", "!="]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class MissingSpec(Spec):
    """`no_data` after a silence of `after`, `keep` the state, or count absence as `breaching`."""

    policy: Literal["no_data", "keep", "breaching"] = "no_data"
    after: Duration = 600.0


class FlappingSpec(Spec):
    transitions: int = Field(ge=1)
    within: Duration


class ActionSpec(Spec):
    type: Literal["log", "event", "webhook"] = "log"
    url: str = ""
    event_type: str = "opendrs.audit.requested"
    goal: str = "overload_relief"
    strategy: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    when: list[StateName] = Field(default_factory=list)


class OccurrenceSpec(Spec):
    """Half of a followed_by: `{rule: NAME}` (or just `NAME`): that rule's alarm
    fires; `{meter: M, selector: {...}, op: ">", threshold: 0}`: a sample meets it."""

    rule: str = ""
    meter: str = ""
    selector: dict[str, str] = Field(default_factory=dict)
    op: OpName = ">"
    threshold: float = 0.0

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, value: Any) -> Any:
        return {"rule": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_of(self) -> OccurrenceSpec:
        if bool(self.rule) == bool(self.meter):
            raise ValueError("give either `rule` (a rule's alarm) or `meter` (a condition)")
        return self

    def to_occurrence(self) -> Occurrence:
        return Occurrence(self.rule, self.meter, self.selector, Op(self.op), self.threshold)


class FollowedBySpec(Spec):
    """`first` then `then` within `within`, joined on the `on` labels."""

    first: OccurrenceSpec
    then: OccurrenceSpec
    within: Duration
    on: list[str] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, value: Any) -> Any:
        # YAML 1.1 reads the bare key `on` as the boolean true.
        if isinstance(value, dict) and True in value:
            value = {("on" if k is True else k): v for k, v in value.items()}
        return value

    def to_pattern(self) -> FollowedBy:
        return FollowedBy(
            self.first.to_occurrence(), self.then.to_occurrence(), self.within, tuple(self.on)
        )


class RuleSpec(Spec):
    name: str
    meter: str = ""
    selector: dict[str, str] = Field(default_factory=dict)
    aggregate: Literal["last", "mean", "max", "min", "sum", "count", "rate"] = "last"
    window: Duration = 0.0
    op: OpName | None = None
    threshold: float | None = None
    group_by: list[str] = Field(default_factory=list)
    group_aggregate: Literal["mean", "max", "min", "sum", "count"] = "mean"
    followed_by: FollowedBySpec | None = None
    for_: Duration | None = Field(None, alias="for")
    n_of_m: tuple[int, int] | None = None
    clear_threshold: float | None = None
    clear_for: Duration = 0.0
    clear_samples: int = Field(1, ge=1)
    missing: MissingSpec = MissingSpec()
    flapping: FlappingSpec | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    actions: list[ActionSpec] = Field(default_factory=list)
    scale: float = Field(1.0, gt=0)
    description: str = ""

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "a rule name is letters, digits and _ . : - (starting with a letter), "
                f"got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _complete(self) -> RuleSpec:
        if self.followed_by is not None:
            unused = [f for f in ("meter", "op", "threshold", "group_by") if getattr(self, f)]
            if unused:
                raise ValueError(
                    f"a followed_by rule takes its conditions from first/then: "
                    f"remove {', '.join(unused)}"
                )
            return self
        missing = [f for f in ("meter", "op", "threshold") if getattr(self, f) in (None, "")]
        if missing:
            raise ValueError(f"a rule needs {', '.join(missing)} (or a followed_by pattern)")
        return self

    def to_rule(self) -> ThresholdRule:
        return ThresholdRule(
            name=self.name,
            meter=self.meter,
            threshold=self.threshold or 0.0,
            op=Op(self.op or ">"),
            clear_threshold=self.clear_threshold,
            clear_samples=self.clear_samples,
            severity=Severity(self.severity),
            labels=self.labels,
            actions=tuple(_action(i, a) for i, a in enumerate(self.actions)),
            selector=self.selector,
            aggregate=Aggregate(self.aggregate),
            window=self.window,
            for_seconds=self.for_ or 0.0,
            n_of_m=self.n_of_m,
            clear_for=self.clear_for,
            missing=Missing(MissingPolicy(self.missing.policy), self.missing.after),
            flapping=None
            if self.flapping is None
            else Flapping(self.flapping.transitions, self.flapping.within),
            annotations=self.annotations,
            scale=self.scale,
            group_by=tuple(self.group_by),
            group_aggregate=Aggregate(self.group_aggregate),
            followed_by=None if self.followed_by is None else self.followed_by.to_pattern(),
        )


def _action(index: int, spec: ActionSpec) -> RuleAction:
    try:
        return RuleAction(
            kind=ActionKind(spec.type),
            event_type=spec.event_type,
            goal=spec.goal,
            strategy=spec.strategy,
            parameters=spec.parameters,
            url=spec.url,
            on=tuple(AlarmState(s) for s in spec.when),
        )
    except InvalidInput as exc:
        raise InvalidInput(exc.problem, field=f"actions.{index}.{exc.field}") from exc


class RuleFileSpec(Spec):
    rules: list[RuleSpec] = Field(default_factory=list)


def rules_from_specs(
    specs: list[RuleSpec],
    *,
    source: str,
    node: yaml.Node | None,
    at: tuple[int | str, ...] = ("rules",),
    seen: dict[str, str] | None = None,
) -> list[ThresholdRule]:
    """Cep rules from validated specs; a rule's own checks (n_of_m with `for`,
    hysteresis on the wrong side...) and duplicate names report their line."""
    seen = {} if seen is None else seen
    rules: list[ThresholdRule] = []
    for index, spec in enumerate(specs):
        where = (*at, index)
        try:
            rule = spec.to_rule()
        except InvalidInput as exc:
            field = exc.field or ""
            location = (*where, *_spec_path(field))
            raise _located(exc.problem, source, node, location) from exc
        if rule.name in seen:
            raise _located(
                f"duplicate rule name {rule.name!r} (first defined at {seen[rule.name]})",
                source,
                node,
                (*where, "name"),
            )
        seen[rule.name] = _place(source, node, (*where, "name"))
        rules.append(rule)
    return rules


def load_rule_file(path: Path, seen: dict[str, str] | None = None) -> list[ThresholdRule]:
    """The rules of one YAML file (`rules: [...]`, or a bare list of rules)."""
    data, node = read_document(path)
    at: tuple[int | str, ...] = ("rules",)
    if isinstance(data, list):
        data = {"rules": data}
        at = ()
    spec = validate(RuleFileSpec, data, source=str(path), node=node)
    return rules_from_specs(spec.rules, source=str(path), node=node, at=at, seen=seen)


def load_rule_files(paths: list[Path]) -> list[ThresholdRule]:
    """All rules of several files; a name defined twice (even across files) is an error."""
    seen: dict[str, str] = {}
    rules: list[ThresholdRule] = []
    for path in paths:
        rules.extend(load_rule_file(path, seen))
    check_pattern_references(rules, seen)
    return rules


def check_pattern_references(rules: list[ThresholdRule], seen: dict[str, str]) -> None:
    """The rules a followed_by names exist (across all the files), reported at the
    line of the pattern rule's name."""
    try:
        check_references(rules)
    except InvalidInput as exc:
        place = seen.get(exc.source.removeprefix("rule ").strip("'"), exc.source)
        raise InvalidInput(exc.problem, source=place, field=exc.field) from exc


_FIELD_ALIASES = {"for_seconds": "for", "type": "type"}


def _spec_path(field: str) -> tuple[str, ...]:
    if not field:
        return ()
    return tuple(_FIELD_ALIASES.get(part, part) for part in field.split("."))


def _place(source: str, node: yaml.Node | None, location: tuple[int | str, ...]) -> str:
    line = line_of(node, location)
    return f"{source} line {line}" if line is not None else source


def _located(
    problem: str, source: str, node: yaml.Node | None, location: tuple[int | str, ...]
) -> InvalidInput:
    field = ".".join(str(p) for p in location)
    return InvalidInput(problem, source=_place(source, node, location), field=field)
