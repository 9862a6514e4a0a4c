"""`opendrs plans`: the API's start/cancel routes and the CLI following a plan that a
real executor runs on a real SQLite store, with its progress bar and exit codes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from rich.console import Console

from fakes.driver import FakeDriver
from fakes.plans import host_state, migrate, saved_plan
from opendrs.api.app import create_app
from opendrs.applier import PlanExecutor
from opendrs.commands import api_client
from opendrs.commands import plans as command
from opendrs.domain.action import ActionState, PlanState
from opendrs.domain.clock import ManualClock
from opendrs.store.sql.database import open_database
from opendrs.store.sql.repositories import SqlStore


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    return SqlStore(open_database(f"sqlite:///{tmp_path / 'plans.db'}"), ManualClock())


@pytest.fixture
def client(store: SqlStore) -> TestClient:
    return TestClient(create_app(store, dashboard=False))


def three_step_plan(store: SqlStore) -> str:
    x = migrate("x", "a", "b")
    y = migrate("y", "a", "c")
    return saved_plan(store, x, y, host_state("a", "off", x, y)).id


def test_start_then_watch_follows_the_plan_to_its_end(store: SqlStore, client: TestClient) -> None:
    plan_id = three_step_plan(store)
    executor = PlanExecutor(store, FakeDriver({"x": "a", "y": "a"}, polls=2), ManualClock())
    started = client.post(f"/v1/action_plans/{plan_id}/start")
    assert started.status_code == 200 and started.json()["state"] == "PENDING"
    assert client.post(f"/v1/action_plans/{plan_id}/start").status_code == 409

    console = Console(record=True, width=120)
    rounds: list[float] = []

    def one_round(seconds: float) -> None:
        rounds.append(seconds)
        executor.advance_all()

    final = command.watch_plan(client, plan_id, console, interval=0.5, wait=one_round)
    assert final["state"] == "SUCCEEDED"
    assert rounds and set(rounds) == {0.5}
    assert "3/3" in console.export_text()
    command.print_plan(console, final)
    text = console.export_text()
    assert "migrate x (a→b)" in text and "a→off" in text


def test_cancel_before_start_cancels_every_action(store: SqlStore, client: TestClient) -> None:
    plan_id = three_step_plan(store)
    reply = client.post(f"/v1/action_plans/{plan_id}/cancel")
    assert reply.json()["state"] == "CANCELLED"
    assert {a["state"] for a in reply.json()["actions"]} == {"CANCELLED"}
    assert client.post(f"/v1/action_plans/{plan_id}/cancel").status_code == 409


def test_cancel_of_a_running_plan_is_carried_out_by_the_applier(
    store: SqlStore, client: TestClient
) -> None:
    plan_id = three_step_plan(store)
    driver = FakeDriver({"x": "a", "y": "a"}, polls=3)
    executor = PlanExecutor(store, driver, ManualClock())
    client.post(f"/v1/action_plans/{plan_id}/start")
    executor.advance_all()
    assert client.post(f"/v1/action_plans/{plan_id}/cancel").json()["state"] == "CANCELLING"
    for _ in range(5):
        executor.advance_all()
    plan = store.get_plan(plan_id)
    assert plan.state == PlanState.CANCELLED
    assert [a.state for a in plan.actions] == [
        ActionState.SUCCEEDED,
        ActionState.SUCCEEDED,
        ActionState.CANCELLED,
    ]


def test_the_cli_lists_shows_and_reports_api_errors(
    store: SqlStore, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_id = three_step_plan(store)
    monkeypatch.setattr(command, "_client", lambda api: client)
    runner = CliRunner()
    listed = runner.invoke(command.plans, ["list"])
    assert listed.exit_code == 0, listed.output
    assert plan_id[:8] in listed.output and "RECOMMENDED" in listed.output
    shown = runner.invoke(command.plans, ["show", plan_id])
    assert "migrate y (a→c)" in shown.output and "0/3 done" in shown.output
    missing = runner.invoke(command.plans, ["show", "nope"])
    assert missing.exit_code == 1
    assert "404" in missing.output and "'nope' not found" in missing.output
    assert runner.invoke(command.plans, ["start", plan_id]).output.strip().endswith("PENDING")


def test_an_unreachable_api_is_a_clear_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = httpx.Client(base_url="http://api.invalid", transport=httpx.MockTransport(refuse))
    with pytest.raises(api_client.ApiProblem, match=r"cannot reach the API at http://api\.invalid"):
        api_client.call(client, "GET", "/v1/action_plans")
