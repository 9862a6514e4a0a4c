"""Rule unit tests: the shipped examples pass, and a wrong expectation fails
showing the expected and actual sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendrs.rulefiles.cases import run_test_file

EXAMPLES = Path(__file__).parents[2] / "examples" / "rules"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.test.yaml")), ids=lambda p: p.name)
def test_the_shipped_rule_tests_pass(path: Path) -> None:
    result = run_test_file(path)
    assert not result.error
    failures = [f for case in result.cases for f in case.failures]
    assert failures == []
    assert result.passed == len(result.cases) >= 1


RULE = """\
rules:
  - {name: hot, meter: cpu_util, op: ">", threshold: 80, for: 2m, labels: {team: ops}}
"""


def test_a_wrong_expectation_shows_both_sets(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULE)
    test = tmp_path / "r.test.yaml"
    test.write_text(
        """\
rule_files: [r.yaml]
tests:
  - name: right
    interval: 1m
    input_series: [{series: 'cpu_util{instance="vm1"}', values: '90x3'}]
    expect:
      - at: 2m
        alarms: [{rule: hot, labels: {instance: vm1, team: ops}, state: alarm}]
        notifications: [{rule: hot, labels: {instance: vm1, team: ops}, state: alarm}]
  - name: wrong
    interval: 1m
    input_series: [{series: 'cpu_util{instance="vm1"}', values: '90x3'}]
    expect:
      - at: 1m
        alarms: [{rule: hot, labels: {instance: vm1, team: ops}, state: alarm}]
"""
    )
    result = run_test_file(test)
    assert [c.passed for c in result.cases] == [True, False]
    [failure] = result.cases[1].failures
    assert failure.splitlines() == [
        "at 1m: alarms",
        "  expected:",
        '    hot{instance="vm1", team="ops"} alarm',
        "  actual:",
        '    hot{instance="vm1", team="ops"} pending',
    ]


def test_inline_rules_and_a_broken_file(tmp_path: Path) -> None:
    test = tmp_path / "t.yaml"
    test.write_text(
        RULE + "tests:\n  - {name: none, input_series: [], expect: [{at: 0, alarms: []}]}\n"
    )
    assert run_test_file(test).passed == 1
    missing = tmp_path / "m.yaml"
    missing.write_text("rule_files: [nowhere.yaml]\ntests: [{name: x}]\n")
    result = run_test_file(missing)
    assert "nowhere.yaml" in result.error and "line 1" in result.error
    assert result.failed == 1
