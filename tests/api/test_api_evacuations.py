"""/v1/evacuations on the SQL store: the marks a maintenance evacuation left are
listed (all, or those of one host) and cleared one instance at a time, with 404s
that say which mark is missing and why."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fakes import cluster_scene as scene
from opendrs.api.app import create_app
from opendrs.domain.clock import ManualClock
from opendrs.domain.evacuation import EvacuationMark
from opendrs.store.sql.database import open_database
from opendrs.store.sql.repositories import SqlStore

# compute-03 is in maintenance in the scene; its instances went to 01 and 02.
MARKS = [
    EvacuationMark("vm-09", "compute-03", "audit-m", "plan-m", scene.T0 + 60),
    EvacuationMark("vm-10", "compute-03", "audit-m", "plan-m", scene.T0 + 90),
    EvacuationMark("vm-11", "compute-05", "audit-n", "plan-n", scene.T0 + 120),
]


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    store = SqlStore(open_database(f"sqlite:///{tmp_path / 'api.db'}"), ManualClock(scene.T0))
    store.upsert_hosts(scene.hosts())
    store.record_evacuations(MARKS)
    return store


@pytest.fixture
def client(store: SqlStore) -> TestClient:
    return TestClient(create_app(store, dashboard=False))


def test_every_mark_is_listed_by_instance(client: TestClient) -> None:
    response = client.get("/v1/evacuations")
    assert response.status_code == 200, response.text
    assert response.json() == [
        {
            "instance": m.instance,
            "host": m.host,
            "audit_id": m.audit_id,
            "plan_id": m.plan_id,
            "at": m.at,
        }
        for m in MARKS
    ]


def test_the_marks_of_one_host(client: TestClient) -> None:
    listed = client.get("/v1/evacuations", params={"host": "compute-03"}).json()
    assert [m["instance"] for m in listed] == ["vm-09", "vm-10"]
    assert client.get("/v1/evacuations", params={"host": "compute-01"}).json() == []


def test_an_unknown_host_is_named(client: TestClient) -> None:
    response = client.get("/v1/evacuations", params={"host": "compute-42"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["field"] == "host" and "'compute-42' not found" in error["message"]


def test_a_host_gone_from_the_model_still_shows_its_marks(store: SqlStore) -> None:
    store.record_evacuations([EvacuationMark("vm-12", "retired-01", "audit-r", "plan-r", 1.0)])
    client = TestClient(create_app(store, dashboard=False))
    listed = client.get("/v1/evacuations", params={"host": "retired-01"}).json()
    assert [m["instance"] for m in listed] == ["vm-12"]


@pytest.mark.parametrize(
    ("query", "field"), [({"host": ""}, "host"), ({"hots": "compute-03"}, "hots")]
)
def test_bad_query_parameters_are_refused(
    client: TestClient, query: dict[str, str], field: str
) -> None:
    response = client.get("/v1/evacuations", params=query)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


def test_delete_clears_one_mark_and_answers_it(client: TestClient, store: SqlStore) -> None:
    response = client.delete("/v1/evacuations/vm-09")
    assert response.status_code == 200, response.text
    assert response.json()["instance"] == "vm-09"
    assert response.json()["host"] == "compute-03"
    assert [m.instance for m in store.list_evacuations()] == ["vm-10", "vm-11"]


def test_delete_of_an_instance_without_a_mark_is_not_found(client: TestClient) -> None:
    assert client.delete("/v1/evacuations/vm-09").status_code == 200
    for name in ("vm-09", "vm-01"):
        response = client.delete(f"/v1/evacuations/{name}")
        assert response.status_code == 404
        error = response.json()["error"]
        assert error == {
            "message": f"instance '{name}' has no evacuation mark",
            "field": "instance",
            "details": [],
        }


def test_delete_with_a_host_clears_only_a_mark_naming_it(
    client: TestClient, store: SqlStore
) -> None:
    wrong = client.delete("/v1/evacuations/vm-11", params={"host": "compute-03"})
    assert wrong.status_code == 404
    error = wrong.json()["error"]
    assert error["field"] == "host"
    assert "no evacuation mark from host 'compute-03'" in error["message"]
    assert "its mark names host 'compute-05'" in error["message"]
    assert "vm-11" in {m.instance for m in store.list_evacuations()}

    right = client.delete("/v1/evacuations/vm-11", params={"host": "compute-05"})
    assert right.status_code == 200 and right.json()["host"] == "compute-05"
    assert "vm-11" not in {m.instance for m in store.list_evacuations()}


def test_an_instance_name_with_a_slash_is_one_path_parameter(
    client: TestClient, store: SqlStore
) -> None:
    store.record_evacuations([EvacuationMark("web/1", "compute-03", "audit-m", "plan-m", 5.0)])
    response = client.delete("/v1/evacuations/web%2F1")
    assert response.status_code == 200, response.text
    assert response.json()["instance"] == "web/1"


def test_the_routes_are_in_the_openapi_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "get" in paths["/v1/evacuations"]
    assert "delete" in paths["/v1/evacuations/{instance}"]
