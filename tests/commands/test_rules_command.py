"""`opendrs rules test` and `opendrs rules check` as a user runs them."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from opendrs.commands.rules import rules

EXAMPLES = Path(__file__).parents[2] / "examples" / "rules"


def test_rules_test_ends_with_the_counts_and_exit_code() -> None:
    result = CliRunner().invoke(rules, ["test", str(EXAMPLES / "watermarks.test.yaml")])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1] == f"{len(lines) - 1} passed, 0 failed"


def test_a_failing_test_exits_1_and_shows_expected_and_actual(tmp_path: Path) -> None:
    bad = tmp_path / "bad.test.yaml"
    bad.write_text(
        (EXAMPLES / "watermarks.test.yaml")
        .read_text()
        .replace("rule_files: [watermarks.yaml]", f"rule_files: [{EXAMPLES / 'watermarks.yaml'}]")
        .replace("state: pending}", "state: alarm}", 1)
    )
    result = CliRunner().invoke(rules, ["test", str(bad)])
    assert result.exit_code == 1
    assert "FAIL" in result.output and "expected:" in result.output and "actual:" in result.output
    assert result.output.strip().splitlines()[-1].endswith("passed, 1 failed")


def test_rules_check_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text("rules:\n  - {name: x, meter: m, op: '>', threshold: hot}\n")
    result = CliRunner().invoke(rules, ["check", str(bad)])
    assert result.exit_code == 2
    assert f"{bad} line 2: rules.0.threshold" in result.output
    ok = CliRunner().invoke(rules, ["check", str(EXAMPLES / "watermarks.yaml")])
    assert ok.exit_code == 0 and "4 rule(s) OK" in ok.output


def test_group_and_pattern_examples_check_and_test() -> None:
    files = [str(EXAMPLES / n) for n in ("watermarks.yaml", "aggregates.yaml", "incidents.yaml")]
    ok = CliRunner().invoke(rules, ["check", *files])
    assert ok.exit_code == 0 and "6 rule(s) OK in 3 file(s)" in ok.output, ok.output
    alone = CliRunner().invoke(rules, ["check", files[2]])
    assert alone.exit_code == 2
    assert "incidents.yaml line 5: followed_by.first.rule" in alone.output
    assert "no known rule 'host_low_free_ram'" in alone.output
    tests = [str(EXAMPLES / n) for n in ("aggregates.test.yaml", "incidents.test.yaml")]
    result = CliRunner().invoke(rules, ["test", *tests])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "7 passed, 0 failed"
