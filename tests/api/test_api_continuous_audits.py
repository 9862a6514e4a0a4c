"""Continuous audits through the API: POST /v1/audits with an `interval` stores an
ONGOING audit the optimization service runs on that interval, GET shows its run
times, and PATCH /v1/audits/{id} suspends, resumes or cancels it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from fakes import cluster_scene as scene
from fakes.optimization_setup import optimization_over
from fakes.repositories import MemoryRepositories
from opendrs.api.app import create_app
from opendrs.domain.action import PlanState
from opendrs.domain.audit import AuditState
from opendrs.domain.clock import ManualClock

# compute-02's instances use 57% of its cores: above this threshold.
HOT = {"threshold": 50, "target": 45}
EVERY_5_MIN = {"goal": "overload_relief", "parameters": HOT, "audit_type": "continuous"}


@pytest.fixture
def repos() -> MemoryRepositories:
    return scene.populated()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(scene.T0 + 3600)


@pytest.fixture
def client(repos: MemoryRepositories, clock: ManualClock) -> TestClient:
    return TestClient(create_app(repos, dashboard=False, clock=clock))


def schedule(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/audits", json={**EVERY_5_MIN, "interval": 300, **body})
    assert response.status_code == 200, response.text
    audit: dict[str, Any] = response.json()["audit"]
    return audit


def patch(client: TestClient, audit_id: str, state: str) -> Any:
    return client.patch(f"/v1/audits/{audit_id}", json={"state": state})


def test_a_continuous_audit_is_stored_ongoing_and_not_run_by_the_api(
    client: TestClient, repos: MemoryRepositories, clock: ManualClock
) -> None:
    plans = len(repos.list_plans())
    response = client.post("/v1/audits", json={**EVERY_5_MIN, "interval": 300})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["plan_id"] is None
    audit = body["audit"]
    assert audit["audit_type"] == "continuous"
    assert audit["state"] == "ONGOING"
    assert (audit["interval"], audit["next_run_at"], audit["last_run_at"]) == (
        300.0,
        clock.now(),
        None,
    )
    assert len(repos.list_plans()) == plans
    assert client.get(f"/v1/audits/{audit['id']}").json() == audit
    listed = {a["id"]: a for a in client.get("/v1/audits").json()}
    assert listed[audit["id"]] == audit


def test_other_audits_show_no_schedule(client: TestClient) -> None:
    response = client.post("/v1/audits", json={"goal": "overload_relief", "parameters": HOT})
    audit = response.json()["audit"]
    assert (audit["interval"], audit["next_run_at"], audit["last_run_at"]) == (None, None, None)


@pytest.mark.parametrize(
    ("extra", "wording"),
    [
        ({}, "a continuous audit needs an interval"),
        ({"interval": None}, "a continuous audit needs an interval"),
        ({"interval": 0}, "greater than 0"),
        ({"interval": -30}, "greater than 0"),
        ({"interval": "soon"}, "number"),
    ],
)
def test_a_continuous_audit_without_a_positive_interval_is_refused(
    client: TestClient, repos: MemoryRepositories, extra: dict[str, Any], wording: str
) -> None:
    audits = len(repos.list_audits())
    response = client.post("/v1/audits", json={**EVERY_5_MIN, **extra})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "interval"
    assert "'interval'" in error["message"] and wording in error["message"]
    assert len(repos.list_audits()) == audits


def test_an_interval_on_a_oneshot_audit_is_refused(client: TestClient) -> None:
    response = client.post(
        "/v1/audits", json={"goal": "overload_relief", "parameters": HOT, "interval": 60}
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "interval"
    assert "only a continuous audit" in response.json()["error"]["message"]


def test_bad_parameters_are_refused_before_anything_is_scheduled(
    client: TestClient, repos: MemoryRepositories
) -> None:
    audits = len(repos.list_audits())
    response = client.post(
        "/v1/audits", json={**EVERY_5_MIN, "interval": 60, "parameters": {"bogus": 1}}
    )
    assert response.status_code == 422
    assert "bogus" in response.json()["error"]["message"]
    assert len(repos.list_audits()) == audits


def test_patch_suspends_resumes_and_cancels(client: TestClient) -> None:
    audit = schedule(client)

    suspended = patch(client, audit["id"], "SUSPENDED")
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["state"] == "SUSPENDED"
    assert suspended.json()["next_run_at"] == audit["next_run_at"]
    resumed = patch(client, audit["id"], "ONGOING")
    assert resumed.json()["state"] == "ONGOING"
    cancelled = patch(client, audit["id"], "CANCELLED")
    assert cancelled.json()["state"] == "CANCELLED"
    assert cancelled.json()["next_run_at"] is None
    assert client.get(f"/v1/audits/{audit['id']}").json() == cancelled.json()


@pytest.mark.parametrize(
    ("moves", "wording"),
    [
        (["SUSPENDED", "SUSPENDED"], "is already SUSPENDED"),
        (["ONGOING"], "is already ONGOING"),
        (["CANCELLED", "ONGOING"], "it has ended and cannot become ONGOING"),
        (["CANCELLED", "SUSPENDED"], "it has ended and cannot become SUSPENDED"),
    ],
)
def test_a_transition_the_audit_cannot_make_is_a_conflict(
    client: TestClient, moves: list[str], wording: str
) -> None:
    audit = schedule(client)
    *before, last = moves
    for state in before:
        assert patch(client, audit["id"], state).status_code == 200
    response = patch(client, audit["id"], last)
    assert response.status_code == 409
    assert wording in response.json()["error"]["message"]
    assert audit["id"] in response.json()["error"]["message"]


def test_patch_of_an_unknown_audit_is_not_found(client: TestClient) -> None:
    response = patch(client, "nope", "SUSPENDED")
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "audit_id"


def test_patch_only_takes_the_three_operator_states(client: TestClient) -> None:
    audit = schedule(client)
    response = patch(client, audit["id"], "SUCCEEDED")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "state"
    extra = client.patch(f"/v1/audits/{audit['id']}", json={"state": "ONGOING", "interval": 5})
    assert extra.status_code == 422


def test_patch_of_an_audit_without_a_schedule_is_a_conflict(client: TestClient) -> None:
    done = client.post("/v1/audits", json={"goal": "overload_relief", "parameters": HOT})
    response = patch(client, done.json()["audit"]["id"], "CANCELLED")
    assert response.status_code == 409
    assert "only a continuous audit" in response.json()["error"]["message"]


def test_the_optimization_service_runs_what_the_api_scheduled(
    client: TestClient, repos: MemoryRepositories, clock: ManualClock
) -> None:
    optimization = optimization_over(repos, clock)
    # The scene's running plan works on compute-02, which would keep the audit from it.
    repos.set_plan_state("plan-new", PlanState.SUCCEEDED)
    audit = schedule(client)

    (plan,) = optimization.tick()
    assert plan.audit_id == audit["id"]
    shown = client.get(f"/v1/audits/{audit['id']}").json()
    assert (shown["state"], shown["last_run_at"], shown["next_run_at"]) == (
        "ONGOING",
        clock.now(),
        clock.now() + 300,
    )
    assert plan.id in shown["message"]

    assert patch(client, audit["id"], "SUSPENDED").status_code == 200
    clock.advance(600)
    assert optimization.tick() == []
    assert patch(client, audit["id"], "ONGOING").status_code == 200
    (again,) = optimization.tick()
    assert again.audit_id == audit["id"]
    assert patch(client, audit["id"], "CANCELLED").status_code == 200
    clock.advance(600)
    assert optimization.tick() == []
    assert repos.get_audit(audit["id"]).state == AuditState.CANCELLED
