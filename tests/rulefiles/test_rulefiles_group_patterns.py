"""Group rules and followed_by patterns in the YAML rule language: they reach
the cep rule, and their mistakes name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendrs.cep.rule import Aggregate, Op
from opendrs.domain.errors import InvalidInput
from opendrs.rulefiles.cases import run_test_file
from opendrs.rulefiles.schema import load_rule_file, load_rule_files

EXAMPLES = Path(__file__).parents[2] / "examples" / "rules"

RAM = """\
  - {name: low_ram, meter: memory.free.percent, op: "<", threshold: 15}
"""


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_group_rule_reaches_the_engine(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
rules:
  - name: agg
    meter: cpu.util
    group_by: [aggregate, az]
    group_aggregate: max
    op: ">"
    threshold: 80
""",
    )
    (rule,) = load_rule_file(path)
    assert rule.group_by == ("aggregate", "az")
    assert rule.group_aggregate == Aggregate.MAX


def test_a_pattern_reaches_the_engine_with_the_yaml_on_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rules:\n"
        + RAM
        + """\
  - name: incident
    followed_by:
      first: low_ram
      then: {meter: instance.oom, selector: {kind: kill}, op: ">=", threshold: 1}
      within: 5m
      on: [host]
""",
    )
    rules = load_rule_files([path])
    pattern = rules[1].followed_by
    assert pattern is not None
    assert pattern.first.rule == "low_ram"
    assert (pattern.then.meter, pattern.then.op, pattern.then.threshold) == (
        "instance.oom",
        Op.GE,
        1.0,
    )
    assert dict(pattern.then.selector) == {"kind": "kill"}
    assert (pattern.within, pattern.on) == (300.0, ("host",))


@pytest.mark.parametrize(
    ("body", "line", "field", "words"),
    [
        (
            "  - {name: a, meter: m, group_by: [x], group_aggregate: rate, op: '>', threshold: 1}",
            1,
            "rules.0.group_aggregate",
            "mean",
        ),
        ("  - {name: a, meter: m, threshold: 1}", 1, "rules.0", "needs op"),
        (
            "  - name: a\n    followed_by:\n      first: r\n      then: {meter: m}\n"
            "      within: soon\n      on: [host]",
            5,
            "rules.0.followed_by.within",
            "not a duration",
        ),
        (
            "  - name: a\n    followed_by:\n      first: {rule: r, meter: m}\n"
            "      then: {meter: m}\n      within: 1m\n      on: [host]",
            3,
            "rules.0.followed_by.first",
            "either `rule`",
        ),
        (
            "  - name: a\n    meter: m\n    followed_by:\n      first: r\n"
            "      then: {meter: m}\n      within: 1m\n      on: [host]",
            1,
            "rules.0",
            "remove meter",
        ),
        (
            "  - name: a\n    followed_by:\n      first: {meter: x}\n"
            "      then: {meter: m}\n      within: 1m\n      on: [host]",
            1,
            "rules.0.clear_for",
            "needs clear_for",
        ),
        (
            "  - name: a\n    followed_by:\n      first: r\n"
            "      then: {meter: m}\n      within: 1m\n      on: []",
            6,
            "rules.0.followed_by.on",
            "at least 1",
        ),
    ],
)
def test_mistakes_name_line_and_field(
    tmp_path: Path, body: str, line: int, field: str, words: str
) -> None:
    path = write(tmp_path, "rules:\n" + body + "\n")
    with pytest.raises(InvalidInput) as caught:
        load_rule_file(path)
    assert caught.value.source == f"{path} line {line + 1}"
    assert caught.value.field == field
    assert words in caught.value.problem


def test_an_unknown_rule_in_a_pattern_names_the_pattern_line(tmp_path: Path) -> None:
    first = write(tmp_path, "rules:\n" + RAM, "a.yaml")
    second = write(
        tmp_path,
        """\
rules:
  - name: incident
    followed_by: {first: low_rum, then: {meter: m}, within: 1m, on: [host]}
""",
        "b.yaml",
    )
    with pytest.raises(InvalidInput, match="no known rule 'low_rum'") as caught:
        load_rule_files([first, second])
    assert caught.value.source == f"{second} line 2"
    assert caught.value.field == "followed_by.first.rule"


def test_the_examples_load_together() -> None:
    rules = load_rule_files(
        [EXAMPLES / "watermarks.yaml", EXAMPLES / "aggregates.yaml", EXAMPLES / "incidents.yaml"]
    )
    names = {r.name for r in rules}
    assert {"aggregate_cpu_busy", "host_ram_then_instance_oom"} <= names


def test_a_wrong_incident_expectation_fails(tmp_path: Path) -> None:
    rules = write(
        tmp_path,
        "rules:\n"
        + RAM
        + """\
  - name: incident
    followed_by: {first: low_ram, then: {meter: oom}, within: 1m, on: [host]}
""",
    )
    test = write(
        tmp_path,
        f"""\
rule_files: [{rules.name}]
tests:
  - name: too late
    interval: 1m
    input_series:
      - {{series: 'memory.free.percent{{host="h1"}}', values: '10x5'}}
      - {{series: 'oom{{instance="vm1",host="h1"}}', values: '_x2 1'}}
    expect:
      - at: 3m
        alarms:
          - {{rule: low_ram, labels: {{host: h1}}, state: alarm}}
          - {{rule: incident, labels: {{host: h1}}, state: alarm}}
""",
        "r.test.yaml",
    )
    result = run_test_file(test)
    assert not result.error
    assert result.failed == 1
    (failure,) = result.cases[0].failures
    assert "incident" in failure and "actual" in failure
