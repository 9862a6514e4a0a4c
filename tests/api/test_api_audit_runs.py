"""POST /v1/audits: what-if answers without storing anything; real runs store the
audit and a RECOMMENDED plan that POST /v1/audits/{id}/approve makes PENDING."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from fakes import cluster_scene as scene
from fakes.repositories import MemoryRepositories
from opendrs.api.app import create_app
from opendrs.domain.action import PlanState

# compute-02's instances use 57% of its cores: above this threshold.
HOT = {"threshold": 50, "target": 45}
ACTION_KEYS = {"id", "type", "instance", "source", "destination", "node", "state", "after"}


@pytest.fixture
def repos() -> MemoryRepositories:
    return scene.populated()


@pytest.fixture
def client(repos: MemoryRepositories) -> TestClient:
    return TestClient(create_app(repos, dashboard=False))


def test_what_if_answers_with_the_plan_and_stores_nothing(
    client: TestClient, repos: MemoryRepositories
) -> None:
    audits, plans = len(repos.list_audits()), len(repos.list_plans())
    response = client.post(
        "/v1/audits", json={"goal": "overload_relief", "parameters": HOT, "what_if": True}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"actions", "efficacy", "explanations"}
    assert body["actions"], body["explanations"]
    assert all(set(a) == ACTION_KEYS for a in body["actions"])
    assert {a["source"] for a in body["actions"]} == {"compute-02"}
    assert body["efficacy"]["overloaded_hosts_after"] == 0.0
    assert (len(repos.list_audits()), len(repos.list_plans())) == (audits, plans)


def test_a_manual_audit_stores_a_recommended_plan_to_approve(
    client: TestClient, repos: MemoryRepositories
) -> None:
    response = client.post("/v1/audits", json={"goal": "overload_relief", "parameters": HOT})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["audit"]["state"] == "SUCCEEDED"
    plan = repos.get_plan(body["plan_id"])
    assert plan.state == PlanState.RECOMMENDED
    approved = client.post(f"/v1/audits/{body['audit']['id']}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "PENDING"
    again = client.post(f"/v1/audits/{body['audit']['id']}/approve")
    assert again.status_code == 409


def test_an_automatic_audit_is_approved_at_birth(
    client: TestClient, repos: MemoryRepositories
) -> None:
    body = client.post(
        "/v1/audits", json={"goal": "overload_relief", "parameters": HOT, "auto_trigger": True}
    ).json()
    assert repos.get_plan(body["plan_id"]).state == PlanState.PENDING


def test_an_audit_with_nothing_to_do_says_why(client: TestClient) -> None:
    body = client.post(
        "/v1/audits", json={"goal": "overload_relief", "scope": ["compute-01"]}
    ).json()
    assert body["plan_id"] is None
    assert "no action proposed" in body["audit"]["message"]
    assert body["explanations"] == ["no host in scope is above 80% CPU"]
    assert body["audit"]["scope"] == ["compute-01"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"goal": "thermal", "what_if": True}, "goal"),
        (
            {"goal": "overload_relief", "parameters": {"treshold": 1}, "what_if": True},
            "parameters.treshold",
        ),
        ({"goal": "overload_relief", "scope": ["nowhere"], "what_if": True}, "parameters.scope"),
        ({"goal": "overload_relief", "colour": "red"}, "colour"),
    ],
)
def test_bad_audits_are_named(client: TestClient, body: dict[str, object], field: str) -> None:
    response = client.post("/v1/audits", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_audits_are_stamped_by_the_app_clock(repos: MemoryRepositories) -> None:
    from opendrs.domain.clock import ManualClock

    app = create_app(repos, dashboard=False, clock=ManualClock(scene.T0 + 5000))
    body = TestClient(app).post("/v1/audits", json={"goal": "overload_relief"}).json()
    assert body["audit"]["created_at"] == scene.T0 + 5000
    assert TestClient(app).get("/v1/audits").json()[0]["id"] == body["audit"]["id"]
