"""The `opendrs` command line as a person uses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from opendrs.cli import main

SCENARIO = """\
hosts:
  - {name: hot, vcpus: 8, memory_mb: 32768}
  - {name: cool, vcpus: 8, memory_mb: 32768}
instances:
  - {name: a, host: hot, vcpus: 2, memory_mb: 4096, metrics: {cpu_util: 100}}
  - {name: b, host: hot, vcpus: 2, memory_mb: 2048, metrics: {cpu_util: 100}}
  - {name: c, host: hot, vcpus: 2, memory_mb: 1024, metrics: {cpu_util: 100}}
  - {name: e, host: hot, vcpus: 2, memory_mb: 8192, metrics: {cpu_util: 100}}
  - {name: d, host: cool, vcpus: 2, memory_mb: 1024, metrics: {cpu_util: 10}}
"""


def test_demo_steps_json_prints_the_summary(tmp_path: Path) -> None:
    env = {"OPENDRS__CLOUD__SIM__HOSTS": "4", "OPENDRS__CLOUD__SIM__INSTANCES": "12"}
    result = CliRunner().invoke(
        main,
        ["demo", "--steps", "3", "--json", "--database", f"sqlite:///{tmp_path}/d.db"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    for key in (
        "hosts",
        "instances",
        "alarms_fired",
        "plans_executed",
        "migrations",
        "overloaded_host_steps",
        "instances_lost",
        "wall_seconds",
    ):
        assert key in summary
    assert summary["hosts"] == 4 and summary["instances"] == 12
    assert summary["instances_lost"] == 0


def test_a_bad_config_file_stops_with_file_line_and_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("demo:\n  step_seconds: -1\n")
    result = CliRunner().invoke(main, ["demo", "--steps", "1", "--config", str(config)])
    assert result.exit_code == 2
    assert str(config) in result.output
    assert "line 2" in result.output
    assert "demo.step_seconds" in result.output


def test_audit_run_relieves_the_hot_host(tmp_path: Path) -> None:
    scenario = tmp_path / "hot.yaml"
    scenario.write_text(SCENARIO)
    result = CliRunner().invoke(
        main, ["audit", "run", "--scenario", str(scenario), "--goal", "overload_relief", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    moves = [a for a in report["actions"] if a["type"] == "migrate"]
    # One move is enough (100% → 75%); the cheapest VM, by memory, goes.
    assert [(m["instance"], m["source"], m["destination"]) for m in moves] == [("c", "hot", "cool")]
    assert {"id", "type", "instance", "source", "destination", "node", "state", "after"} <= set(
        moves[0]
    )
    assert report["explanations"] or all(m["explanation"] for m in moves)


def test_audit_run_names_a_bad_parameter(tmp_path: Path) -> None:
    scenario = tmp_path / "hot.yaml"
    scenario.write_text(SCENARIO)
    result = CliRunner().invoke(
        main, ["audit", "run", "--scenario", str(scenario), "--param", "treshold=50"]
    )
    assert result.exit_code == 2
    assert "treshold" in result.output


@pytest.mark.parametrize(
    ("param", "named"),
    [("threshold", "expected K=V, got 'threshold'"), ("threshold=[1", "is not YAML")],
)
def test_audit_run_refuses_a_malformed_parameter(tmp_path: Path, param: str, named: str) -> None:
    scenario = tmp_path / "hot.yaml"
    scenario.write_text(SCENARIO)
    result = CliRunner().invoke(
        main, ["audit", "run", "--scenario", str(scenario), "--param", param]
    )
    assert result.exit_code == 2
    assert named in result.output


def test_config_check_prints_the_effective_settings(tmp_path: Path) -> None:
    config = tmp_path / "ok.yaml"
    config.write_text("cloud:\n  sim:\n    hosts: 5\n")
    result = CliRunner().invoke(main, ["config", "check", str(config)])
    assert result.exit_code == 0
    assert json.loads(result.output)["cloud"]["sim"]["hosts"] == 5
