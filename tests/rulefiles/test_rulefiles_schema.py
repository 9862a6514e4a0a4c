"""The YAML rule language: every field reaches the cep rule, and every mistake
is reported with its file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendrs.cep.rule import ActionKind, Aggregate, MissingPolicy, Op
from opendrs.domain.errors import InvalidInput
from opendrs.rulefiles.schema import load_rule_file, load_rule_files

EXAMPLES = Path(__file__).parents[2] / "examples" / "rules"

FULL = """\
rules:
  - name: vm_cpu
    meter: cpu_util
    selector: {flavor: m1.large}
    aggregate: mean
    window: 5m
    op: ">="
    threshold: 90
    for: 2m
    clear_threshold: 80
    clear_for: 1m
    missing: {policy: breaching, after: 15m}
    flapping: {transitions: 5, within: 1h}
    severity: critical
    labels: {team: ops}
    annotations: {summary: hot}
    actions:
      - {type: webhook, url: "http://127.0.0.1:9/hook", when: [alarm, ok]}
      - {type: event, goal: overload_relief}
      - {type: log}
"""


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_field_reaches_the_rule(tmp_path: Path) -> None:
    [rule] = load_rule_file(write(tmp_path, FULL))
    assert rule.selector == {"flavor": "m1.large"}
    assert (rule.aggregate, rule.window, rule.op, rule.threshold) == (
        Aggregate.MEAN,
        300,
        Op.GE,
        90,
    )
    assert (rule.for_seconds, rule.n_of_m, rule.clear_threshold, rule.clear_for) == (
        120,
        None,
        80,
        60,
    )
    assert (rule.missing.policy, rule.missing.after) == (MissingPolicy.BREACHING, 900)
    assert rule.flapping is not None and (rule.flapping.transitions, rule.flapping.within) == (
        5,
        3600,
    )
    assert [a.kind for a in rule.actions] == [ActionKind.WEBHOOK, ActionKind.EVENT, ActionKind.LOG]
    assert rule.labels == {"team": "ops"} and rule.annotations == {"summary": "hot"}
    assert len(rule.version) == 12


def test_the_version_follows_behaviour_not_descriptions(tmp_path: Path) -> None:
    [a] = load_rule_file(write(tmp_path, FULL))
    [b] = load_rule_file(write(tmp_path, FULL.replace("threshold: 90", "threshold: 91"), "b.yaml"))
    [c] = load_rule_file(write(tmp_path, FULL.replace("summary: hot", "summary: warm"), "c.yaml"))
    assert a.version != b.version
    assert a.version == c.version


@pytest.mark.parametrize(
    ("change", "line", "field", "words"),
    [
        (('op: ">="', 'op: "=>"'), 7, "rules.0.op", "Input should be"),
        (("for: 2m", "for: two minutes"), 9, "rules.0.for", "duration"),
        (("for: 2m", "for: 2m\n    n_of_m: [2, 3]"), 10, "rules.0.n_of_m", "either"),
        (
            ("clear_threshold: 80", "clear_threshold: 95"),
            10,
            "rules.0.clear_threshold",
            "above threshold",
        ),
        (("policy: breaching", "policy: guess"), 12, "rules.0.missing.policy", "Input should be"),
        (("transitions: 5", "transitions: 0"), 13, "rules.0.flapping.transitions", "greater"),
        (("http://127.0.0.1:9/hook", "ftp://x"), 18, "rules.0.actions.0.url", "http"),
        (("aggregate: mean", "aggregate: median"), 5, "rules.0.aggregate", "Input should be"),
        (
            ("    severity: critical\n", "    severity: critical\n    colour: red\n"),
            15,
            "rules.0.colour",
            "Extra",
        ),
        (("name: vm_cpu", "name: 'vm cpu'"), 2, "rules.0.name", "letters"),
    ],
)
def test_mistakes_name_file_line_and_field(
    tmp_path: Path, change: tuple[str, str], line: int, field: str, words: str
) -> None:
    path = write(tmp_path, FULL.replace(*change))
    with pytest.raises(InvalidInput, match=words) as caught:
        load_rule_file(path)
    assert caught.value.source == f"{path} line {line}"
    assert caught.value.field == field


def test_a_name_defined_twice_across_files_points_at_both(tmp_path: Path) -> None:
    first = write(tmp_path, FULL, "a.yaml")
    second = write(
        tmp_path, "rules:\n  - {name: x, meter: m, op: '>', threshold: 1}\n" + FULL[7:], "b.yaml"
    )
    with pytest.raises(InvalidInput, match=f"first defined at {first} line 2") as caught:
        load_rule_files([first, second])
    assert caught.value.source == f"{second} line 3"


def test_the_examples_load() -> None:
    rules = load_rule_file(EXAMPLES / "watermarks.yaml")
    assert {r.name for r in rules} >= {
        "host_low_free_ram",
        "instance_over_bandwidth_limit",
        "instance_cpu_saturated",
    }
