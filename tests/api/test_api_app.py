"""The app factory: status, health, extra routers, the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from fakes import cluster_scene as scene
from fakes.repositories import MemoryRepositories
from opendrs.api.app import create_app
from opendrs.api.context import repositories


def test_status_is_what_the_provider_says() -> None:
    client = TestClient(create_app(MemoryRepositories(), status=scene.status))
    assert client.get("/v1/status").json() == {
        "time": scene.T0 + 1500,
        "step": 5,
        "mode": "demo",
        "counters": {"samples": 12840, "audits": 2, "actions_failed": 0},
    }


def test_status_is_read_on_every_request() -> None:
    calls: list[int] = []

    def status() -> dict[str, Any]:
        calls.append(1)
        return {"step": len(calls)}

    client = TestClient(create_app(MemoryRepositories(), status=status))
    assert client.get("/v1/status").json() == {"step": 1}
    assert client.get("/v1/status").json() == {"step": 2}


def test_status_without_a_provider_is_empty() -> None:
    client = TestClient(create_app(MemoryRepositories()))
    assert client.get("/v1/status").json() == {}


def test_healthz() -> None:
    client = TestClient(create_app(MemoryRepositories()))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_title_is_used() -> None:
    app = create_app(MemoryRepositories(), title="opendrs test")
    assert TestClient(app).get("/openapi.json").json()["info"]["title"] == "opendrs test"


def test_extra_routers_are_included_and_reach_the_repositories() -> None:
    router = APIRouter(prefix="/v1/graphs", tags=["graphs"])

    @router.get("/{host}")
    def graph(host: str, request: Request) -> dict[str, int]:
        return {"vcpus": repositories(request).get_host(host).vcpus}

    client = TestClient(create_app(scene.populated(), extra_routers=[router]))
    assert client.get("/v1/graphs/compute-03").json() == {"vcpus": 8}
    # Domain errors raised in extra routers get the same translation.
    missing = client.get("/v1/graphs/compute-42")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "host 'compute-42' not found"
    assert "/v1/graphs/{host}" in client.get("/openapi.json").json()["paths"]


def test_openapi_schema_is_valid_and_complete() -> None:
    client = TestClient(create_app(scene.populated()))
    response = client.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    validate(schema)  # raises on an invalid OpenAPI document
    paths = schema["paths"]
    for path in (
        "/v1/hosts",
        "/v1/hosts/{name}",
        "/v1/instances",
        "/v1/alarms",
        "/v1/alarms/history",
        "/v1/audits",
        "/v1/audits/{audit_id}",
        "/v1/action_plans",
        "/v1/action_plans/{plan_id}",
        "/v1/status",
        "/healthz",
    ):
        assert "get" in paths[path], path
    assert "/" not in paths  # the dashboard is not part of the API
    # Errors are documented with the shape the API really answers with.
    not_found = paths["/v1/hosts/{name}"]["get"]["responses"]["404"]
    assert not_found["content"]["application/json"]["schema"]["$ref"].endswith("ErrorResponse")
    invalid = paths["/v1/alarms/history"]["get"]["responses"]["422"]
    assert invalid["content"]["application/json"]["schema"]["$ref"].endswith("ErrorResponse")
    action = schema["components"]["schemas"]["ActionOut"]["properties"]
    assert {"parents", "explanation", "started_at", "finished_at"} <= set(action)


def test_dashboard_can_be_left_out() -> None:
    client = TestClient(create_app(MemoryRepositories(), dashboard=False))
    assert client.get("/").status_code == 404
    assert client.get("/v1/hosts").status_code == 200


def test_two_apps_do_not_share_repositories() -> None:
    one = TestClient(create_app(scene.populated()))
    two = TestClient(create_app(MemoryRepositories()))
    assert len(one.get("/v1/hosts").json()) == 5
    assert two.get("/v1/hosts").json() == []
