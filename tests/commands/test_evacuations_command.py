"""`opendrs evacuations list|clear` against the real API app on a real SQLite store:
the marks listed, cleared one by one, and what an operator sees when one is missing
or the API cannot be reached."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from fakes import cluster_scene as scene
from opendrs.api.app import create_app
from opendrs.cli import main
from opendrs.commands import evacuations as command
from opendrs.domain.clock import ManualClock
from opendrs.domain.evacuation import EvacuationMark
from opendrs.store.sql.database import open_database
from opendrs.store.sql.repositories import SqlStore

AUDIT = "5e1f0c3a9b7d4e2f8a6c1b0d9e8f7a6b"
MARKS = [
    EvacuationMark("vm-09", "compute-03", AUDIT, "plan-m", scene.T0 + 60),
    EvacuationMark("vm-10", "compute-03", AUDIT, "plan-m", scene.T0 + 90),
    EvacuationMark("vm-11", "compute-05", "audit-n", "plan-n", scene.T0 + 120),
]


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    store = SqlStore(open_database(f"sqlite:///{tmp_path / 'marks.db'}"), ManualClock(scene.T0))
    store.upsert_hosts(scene.hosts())
    store.record_evacuations(MARKS)
    return store


@pytest.fixture
def opendrs(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> Any:
    app = create_app(store, dashboard=False)
    monkeypatch.setattr(command, "_client", lambda api: TestClient(app, base_url=api))

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, ["evacuations", *args])

    return run


def remaining(store: SqlStore) -> list[str]:
    return [m.instance for m in store.list_evacuations()]


def test_list_shows_each_mark_on_one_line(opendrs: Any) -> None:
    result = opendrs("list")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if "vm-" in line]
    assert rows == [
        ["vm-09", "compute-03", "2011-03-03", "00:01:00Z", AUDIT],
        ["vm-10", "compute-03", "2011-03-03", "00:01:30Z", AUDIT],
        ["vm-11", "compute-05", "2011-03-03", "00:02:00Z", "audit-n"],
    ]


def test_list_of_one_host(opendrs: Any) -> None:
    marks = json.loads(opendrs("list", "--host", "compute-05", "--json").output)
    assert marks == [
        {
            "instance": "vm-11",
            "host": "compute-05",
            "audit_id": "audit-n",
            "plan_id": "plan-n",
            "at": scene.T0 + 120,
        }
    ]
    none = opendrs("list", "--host", "compute-01")
    assert none.exit_code == 0 and none.output.strip() == "no instance evacuated from compute-01"


def test_list_of_an_unknown_host_exits_1(opendrs: Any) -> None:
    result = opendrs("list", "--host", "compute-42")
    assert result.exit_code == 1
    assert "404" in result.output and "'compute-42' not found" in result.output


def test_clear_forgets_the_marks_named(opendrs: Any, store: SqlStore) -> None:
    result = opendrs("clear", "vm-09", "vm-11")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "cleared vm-09 (evacuated from compute-03)",
        "cleared vm-11 (evacuated from compute-05)",
    ]
    assert remaining(store) == ["vm-10"]
    assert opendrs("list").output.count("vm-") == 1


def test_clear_goes_on_past_an_instance_without_a_mark_and_exits_1(
    opendrs: Any, store: SqlStore
) -> None:
    result = opendrs("clear", "vm-09", "vm-01", "vm-10")
    assert result.exit_code == 1
    assert "cleared vm-09" in result.output and "cleared vm-10" in result.output
    assert "404 instance 'vm-01' has no evacuation mark" in result.output
    assert "1 of 3 marks not cleared" in result.output
    assert remaining(store) == ["vm-11"]


def test_clear_with_a_host_keeps_a_mark_naming_another(opendrs: Any, store: SqlStore) -> None:
    result = opendrs("clear", "--host", "compute-03", "vm-11", "vm-10")
    assert result.exit_code == 1
    assert "its mark names host 'compute-05'" in result.output
    assert remaining(store) == ["vm-09", "vm-11"]


def test_clear_needs_an_instance(opendrs: Any) -> None:
    result = opendrs("clear")
    assert result.exit_code == 2
    assert "Missing argument 'INSTANCE...'" in result.output


@pytest.mark.parametrize("args", [["list"], ["clear", "vm-09", "vm-10"]])
def test_an_unreachable_api_exits_1_at_once(args: list[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    result = CliRunner().invoke(main, ["evacuations", *args, "--api", url])
    assert result.exit_code == 1
    assert result.output.count("cannot reach the API") == 1
    assert "cleared" not in result.output
