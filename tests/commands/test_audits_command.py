"""`opendrs audit list|show|create|suspend|resume|cancel` against the real API app on
a real SQLite store: what operators see, and the exit codes of their mistakes
(1 when the API refuses or cannot be reached, 2 for a bad command line)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
import uvicorn
from click.testing import CliRunner, Result
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from fakes import cluster_scene as scene
from opendrs.api.app import create_app
from opendrs.cli import main
from opendrs.commands import audits as command
from opendrs.domain.audit import AuditState
from opendrs.domain.clock import ManualClock
from opendrs.domain.evacuation import EvacuationMark
from opendrs.rulefiles.durations import format_duration
from opendrs.store.sql.database import open_database
from opendrs.store.sql.repositories import SqlStore

# compute-02's instances use 57% of its cores: above this threshold.
HOT = ["--param", "threshold=50", "--param", "target=45"]
NOW = scene.T0 + 3600


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    store = SqlStore(open_database(f"sqlite:///{tmp_path / 'audits.db'}"), ManualClock(NOW))
    store.upsert_hosts(scene.hosts())
    store.upsert_instances(scene.instances())
    return store


@pytest.fixture
def app(store: SqlStore) -> FastAPI:
    return create_app(store, dashboard=False, clock=ManualClock(NOW))


@pytest.fixture
def opendrs(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`opendrs ARGS...` as an operator types it, talking to `app`."""
    monkeypatch.setattr(command, "_client", lambda api: TestClient(app, base_url=api))

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, list(args))

    return run


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def created_id(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return str(json.loads(result.output)["audit"]["id"])


def test_a_continuous_audit_through_its_life(opendrs: Any, store: SqlStore) -> None:
    made = opendrs(
        "audit", "create", "--goal", "overload_relief", *HOT, "--continuous", "--interval", "10m"
    )
    assert made.exit_code == 0, made.output
    assert "is ONGOING: overload_relief every 10m" in made.output
    (audit,) = [a for a in store.list_audits() if a.interval is not None]
    assert (audit.interval, audit.next_run_at, audit.parameters) == (
        600.0,
        NOW,
        {"threshold": 50, "target": 45},
    )

    listed = opendrs("audit", "list")
    assert listed.exit_code == 0, listed.output
    assert audit.id in listed.output and "every 10m" in listed.output
    shown = opendrs("audit", "show", audit.id)
    assert shown.exit_code == 0, shown.output
    assert '{"target": 45, "threshold": 50}' in shown.output
    assert "every 10m" in shown.output and "2011-03-03 01:00:00Z" in shown.output

    suspended = opendrs("audit", "suspend", audit.id)
    assert suspended.exit_code == 0, suspended.output
    assert f"audit {audit.id} is SUSPENDED; next run 2011-03-03 01:00:00Z" in suspended.output
    assert store.get_audit(audit.id).state == AuditState.SUSPENDED
    assert (
        opendrs("audit", "resume", audit.id)
        .output.strip()
        .endswith("is ONGOING; next run 2011-03-03 01:00:00Z")
    )
    cancelled = opendrs("audit", "cancel", audit.id)
    assert cancelled.output.strip() == f"audit {audit.id} is CANCELLED"
    assert store.get_audit(audit.id).state == AuditState.CANCELLED


@pytest.mark.parametrize(
    ("moves", "wording"),
    [
        (["suspend", "suspend"], "is already SUSPENDED"),
        (["resume"], "is already ONGOING"),
        (["cancel", "resume"], "it has ended and cannot become ONGOING"),
    ],
)
def test_a_change_the_audit_cannot_make_exits_1_with_the_reason(
    opendrs: Any, moves: list[str], wording: str
) -> None:
    audit_id = created_id(
        opendrs(
            "audit",
            "create",
            "--goal",
            "overload_relief",
            *HOT,
            "--continuous",
            "--interval",
            "300",
            "--json",
        )
    )
    *before, last = moves
    for verb in before:
        assert opendrs("audit", verb, audit_id).exit_code == 0
    refused = opendrs("audit", last, audit_id)
    assert refused.exit_code == 1
    assert "409" in refused.output and wording in refused.output


def test_a_oneshot_audit_runs_and_names_its_plan(opendrs: Any, store: SqlStore) -> None:
    made = opendrs("audit", "create", "--goal", "overload_relief", *HOT)
    assert made.exit_code == 0, made.output
    (plan,) = store.list_plans()
    assert f"plan {plan.id}: opendrs plans show {plan.id}" in made.output
    assert f"audit {plan.audit_id} SUCCEEDED: plan {plan.id} with 1 actions" in made.output
    assert "- compute-02 at 57.2% (threshold 50%) relieved" in made.output
    refused = opendrs("audit", "suspend", plan.audit_id)
    assert refused.exit_code == 1
    assert "only a continuous audit" in refused.output


def test_json_answers_are_the_apis(opendrs: Any) -> None:
    audit_id = created_id(
        opendrs(
            "audit",
            "create",
            "--goal",
            "overload_relief",
            *HOT,
            "--scope",
            "compute-02",
            "--auto-trigger",
            "--json",
        )
    )
    shown = json.loads(opendrs("audit", "show", audit_id, "--json").output)
    assert (shown["scope"], shown["auto_trigger"], shown["audit_type"]) == (
        ["compute-02"],
        True,
        "oneshot",
    )
    listed = json.loads(opendrs("audit", "list", "--json").output)
    assert [a["id"] for a in listed] == [audit_id]
    suspended = opendrs(
        "audit",
        "create",
        "--goal",
        "overload_relief",
        *HOT,
        "--continuous",
        "--interval",
        "1h30m",
        "--json",
    )
    assert json.loads(suspended.output)["audit"]["interval"] == 5400.0


@pytest.mark.parametrize("verb", ["show", "suspend", "resume", "cancel"])
def test_an_unknown_id_exits_1_naming_it(opendrs: Any, verb: str) -> None:
    result = opendrs("audit", verb, "nope")
    assert result.exit_code == 1
    assert "404" in result.output and "audit 'nope' not found" in result.output


@given(st.integers(min_value=1, max_value=10**8))
def test_an_interval_reads_as_it_is_printed(seconds: int) -> None:
    ctx = click.Context(command.create_command)
    for spelled in (format_duration(seconds), str(seconds)):
        assert command.interval_option(ctx, click.Option(["--interval"]), spelled) == seconds


@pytest.mark.parametrize(
    ("args", "wording"),
    [
        (["--continuous", "--interval", "10x"], "not a duration: '10x'"),
        (["--continuous", "--interval", "0"], "must be greater than 0"),
        (["--continuous", "--interval", "-5m"], "not a duration: '-5m'"),
        (["--continuous"], "--continuous needs --interval"),
        (["--interval", "10m"], "--interval is for a --continuous audit"),
        (["--param", "threshold"], "expected K=V, got 'threshold'"),
        (["--param", "threshold=[1"], "threshold: value '[1' is not YAML"),
    ],
)
def test_a_bad_command_line_exits_2_and_creates_nothing(
    opendrs: Any, store: SqlStore, args: list[str], wording: str
) -> None:
    result = opendrs("audit", "create", "--goal", "overload_relief", *args)
    assert result.exit_code == 2
    assert wording in result.output
    assert store.list_audits() == []


def test_what_the_api_refuses_exits_1_with_its_reason(opendrs: Any, store: SqlStore) -> None:
    unknown = opendrs("audit", "create", "--goal", "world_peace")
    assert unknown.exit_code == 1
    assert "422" in unknown.output and "world_peace" in unknown.output
    bad = opendrs(
        "audit",
        "create",
        "--goal",
        "overload_relief",
        "--param",
        "treshold=50",
        "--continuous",
        "--interval",
        "5m",
    )
    assert bad.exit_code == 1 and "treshold" in bad.output
    assert store.list_audits() == []


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["show", "a1"],
        ["create", "--goal", "overload_relief"],
        ["suspend", "a1"],
    ],
)
def test_an_unreachable_api_exits_1(args: list[str]) -> None:
    url = closed_port_url()
    result = CliRunner().invoke(main, ["audit", *args, "--api", url])
    assert result.exit_code == 1
    assert f"cannot reach the API at {url}" in result.output


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """`app` under uvicorn on a free loopback port, in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections made before the server runs wait in the backlog
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        httpx.get(url + "/v1/status", timeout=30).raise_for_status()
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def test_the_commands_against_a_running_server(app: FastAPI, store: SqlStore) -> None:
    store.record_evacuations([EvacuationMark("vm-09", "compute-03", "a", "p", scene.T0)])
    runner = CliRunner()
    with serving(app) as url:
        made = runner.invoke(
            main,
            [
                "audit",
                "create",
                "--api",
                url,
                "--goal",
                "overload_relief",
                *HOT,
                "--continuous",
                "--interval",
                "2m",
                "--json",
            ],
        )
        audit_id = created_id(made)
        listed = runner.invoke(main, ["audit", "list", "--api", url, "--json"])
        assert [a["interval"] for a in json.loads(listed.output)] == [120.0]
        assert runner.invoke(main, ["audit", "cancel", audit_id, "--api", url]).exit_code == 0
        marks = runner.invoke(main, ["evacuations", "list", "--api", url, "--json"])
        assert [m["instance"] for m in json.loads(marks.output)] == ["vm-09"]
        cleared = runner.invoke(main, ["evacuations", "clear", "vm-09", "--api", url])
        assert cleared.exit_code == 0, cleared.output
    assert store.get_audit(audit_id).state == AuditState.CANCELLED
    assert store.list_evacuations() == []
