"""Every error answer has one shape, `{"error": {"message", "field", "details"}}`,
and its message names what is wrong."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from fakes import cluster_scene as scene
from opendrs.api.app import create_app
from opendrs.domain.action import ActionPlan, PlanState
from opendrs.domain.errors import DriverError, InvalidInput, InvalidTransition, StoreError
from opendrs.domain.host import Host


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(scene.populated()))


@pytest.mark.parametrize(
    ("url", "field", "words"),
    [
        ("/v1/alarms/history?limit=abc", "limit", ["query parameter 'limit'", "integer", "'abc'"]),
        ("/v1/alarms/history?limit=0", "limit", ["query parameter 'limit'", "greater than"]),
        ("/v1/audits?limit=5000", "limit", ["query parameter 'limit'", "less than"]),
        ("/v1/alarms?all=maybe", "all", ["query parameter 'all'", "boolean", "'maybe'"]),
        ("/v1/action_plans?state=DONE", "state", ["query parameter 'state[0]'", "'SUCCEEDED'"]),
        ("/v1/instances?host=", "host", ["query parameter 'host'", "at least 1 character"]),
        ("/v1/alarms?al=true", "al", ["query parameter 'al'", "unknown", "takes: all"]),
        ("/v1/hosts?verbose=1", "verbose", ["query parameter 'verbose'", "takes: none"]),
    ],
)
def test_bad_query_parameters_are_422_naming_the_parameter(
    client: TestClient, url: str, field: str, words: Sequence[str]
) -> None:
    response = client.get(url)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == field
    for word in words:
        assert word in error["message"], (word, error["message"])
    assert error["details"][0]["field"] == field


def test_several_problems_are_all_reported(client: TestClient) -> None:
    error = client.get("/v1/action_plans?bogus=1&other=2").json()["error"]
    assert [d["field"] for d in error["details"]] == ["bogus", "other"]
    assert "'bogus'" in error["message"]
    assert "'other'" in error["message"]
    assert error["field"] == "bogus"


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    response = client.get("/v1/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Not Found: GET /v1/nothing"


def test_wrong_method_is_a_json_405(client: TestClient) -> None:
    response = client.delete("/v1/hosts")
    assert response.status_code == 405
    assert "DELETE /v1/hosts" in response.json()["error"]["message"]
    assert "GET" in response.headers["allow"]


def _raising(exc: Exception) -> APIRouter:
    router = APIRouter()

    @router.get("/boom")
    def boom() -> None:
        raise exc

    return router


@pytest.mark.parametrize(
    ("exc", "status", "message", "field"),
    [
        (
            InvalidInput("must be positive", source="POST /v1/audits", field="parameters.x"),
            422,
            "POST /v1/audits: parameters.x: must be positive",
            "parameters.x",
        ),
        (
            InvalidTransition("action plan", "SUCCEEDED", "ONGOING"),
            409,
            "action plan cannot go from SUCCEEDED to ONGOING",
            None,
        ),
        (DriverError("libvirt gone", transient=True), 503, "cloud driver: libvirt gone", None),
        (DriverError("no such domain"), 502, "cloud driver: no such domain", None),
        (StoreError("database is locked", transient=True), 503, "store: database is locked", None),
        (StoreError("disk full"), 500, "store: disk full", None),
    ],
)
def test_domain_errors_are_translated(
    exc: Exception, status: int, message: str, field: str | None
) -> None:
    client = TestClient(create_app(scene.populated(), extra_routers=[_raising(exc)]))
    response = client.get("/boom")
    assert response.status_code == status
    assert response.json() == {"error": {"message": message, "field": field, "details": []}}


class _BrokenRepositories:
    """Answers like MemoryRepositories except that listing hosts fails."""

    def __init__(self) -> None:
        self._inner = scene.populated()

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def list_hosts(self) -> list[Host]:
        raise RuntimeError("database is locked at sqlite:///secret/path.db")

    def list_plans(
        self, states: Sequence[PlanState] | None = None, limit: int = 100
    ) -> list[ActionPlan]:
        return self._inner.list_plans(states, limit)


def test_an_unexpected_failure_is_a_json_500_that_keeps_internals_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(_BrokenRepositories())  # type: ignore[arg-type]
    client = TestClient(app, raise_server_exceptions=False)
    response = client.get("/v1/hosts")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["message"] == "internal error (RuntimeError); see the server log"
    assert "secret" not in response.text
    assert "database is locked" in caplog.text
    # The rest of the API is unaffected.
    assert client.get("/v1/action_plans").status_code == 200


def test_a_failing_status_provider_is_a_500_not_a_crash() -> None:
    def status() -> dict[str, object]:
        raise ValueError("simulator stopped")

    client = TestClient(create_app(scene.populated(), status=status), raise_server_exceptions=False)
    response = client.get("/v1/status")
    assert response.status_code == 500
    assert response.json()["error"]["message"].startswith("internal error (ValueError)")
    assert client.get("/healthz").status_code == 200
