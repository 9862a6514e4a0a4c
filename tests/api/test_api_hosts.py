"""GET /v1/hosts, /v1/hosts/{name} and /v1/instances over MemoryRepositories."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from fakes import cluster_scene as scene
from fakes.repositories import MemoryRepositories
from opendrs.api.app import create_app
from opendrs.domain.host import Host
from opendrs.domain.instance import Flavor, Instance


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(scene.populated(), status=scene.status))


def test_hosts_are_listed_by_name_with_nova_fields_and_state(client: TestClient) -> None:
    response = client.get("/v1/hosts")
    assert response.status_code == 200
    hosts = response.json()
    assert [h["name"] for h in hosts] == [f"compute-0{i}" for i in range(1, 6)]
    first = hosts[0]
    for field in (
        "vcpus",
        "vcpus_used",
        "memory_mb",
        "memory_mb_used",
        "free_ram_mb",
        "local_gb",
        "local_gb_used",
        "free_disk_gb",
        "disk_available_least",
        "running_vms",
        "current_workload",
        "hypervisor_type",
        "hypervisor_version",
        "cpu_info",
        "cpu_allocation_ratio",
        "ram_allocation_ratio",
        "reserved_host_memory_mb",
    ):
        assert field in first, field
    assert first["free_ram_mb"] == 65536 - 12288
    assert first["free_disk_gb"] == 500
    by_name = {h["name"]: h for h in hosts}
    assert by_name["compute-03"]["state"] == "maintenance"
    assert by_name["compute-03"]["disabled_reason"] == "disk replacement"
    assert by_name["compute-05"]["state"] == "off"


def test_host_load_is_measured_first_then_derived(client: TestClient) -> None:
    by_name = {h["name"]: h for h in client.get("/v1/hosts").json()}
    # Measured by the host itself.
    assert by_name["compute-02"]["cpu_percent"] == pytest.approx(92.0)
    assert by_name["compute-02"]["ram_percent"] == pytest.approx(90.0)
    assert by_name["compute-02"]["metrics"]["compute.node.cpu.percent"] == 92.0
    # No host metric: (4 x 60% + 2 x 40%) cores of 8, and RAM from memory_mb_used.
    assert by_name["compute-04"]["cpu_percent"] == pytest.approx(40.0)
    assert by_name["compute-04"]["ram_percent"] == pytest.approx(100 * 10240 / 32768)
    # Nothing measured at all.
    assert by_name["compute-05"]["cpu_percent"] is None
    assert by_name["compute-05"]["ram_percent"] == 0.0


def test_one_host_by_name(client: TestClient) -> None:
    response = client.get("/v1/hosts/compute-04")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "compute-04"
    assert body["cpu_percent"] == pytest.approx(40.0)


def test_unknown_host_is_a_404_naming_it(client: TestClient) -> None:
    response = client.get("/v1/hosts/compute-99")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"message": "host 'compute-99' not found", "field": "name", "details": []}
    }


def test_instances_all_and_per_host(client: TestClient) -> None:
    everything = client.get("/v1/instances").json()
    assert [i["name"] for i in everything] == [f"vm-0{i}" for i in range(1, 9)]
    on_two = client.get("/v1/instances", params={"host": "compute-02"}).json()
    assert [i["name"] for i in on_two] == ["vm-04", "vm-05", "vm-06"]
    vm4 = on_two[0]
    assert vm4["flavor"] == {"name": "m1.large", "vcpus": 4, "memory_mb": 8192, "disk_gb": 80}
    assert (vm4["vcpus"], vm4["memory_mb"], vm4["disk_gb"]) == (4, 8192, 80)
    assert vm4["cpu_util"] == 95.0
    assert vm4["state"] == "active"
    assert vm4["project"] == "demo"


def test_instances_of_an_empty_host_is_an_empty_list(client: TestClient) -> None:
    response = client.get("/v1/instances", params={"host": "compute-05"})
    assert response.status_code == 200
    assert response.json() == []


def test_instances_of_an_unknown_host_is_a_404_naming_the_parameter(client: TestClient) -> None:
    response = client.get("/v1/instances", params={"host": "nowhere"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["message"] == "host 'nowhere' not found"
    assert error["field"] == "host"


def test_an_instance_without_cpu_util_reports_null() -> None:
    repos = MemoryRepositories()
    repos.upsert_hosts([Host(name="h", vcpus=4, memory_mb=1024)])
    repos.upsert_instances([Instance(name="quiet", host="h", flavor=Flavor("f", 1, 512))])
    client = TestClient(create_app(repos))
    assert client.get("/v1/instances").json()[0]["cpu_util"] is None
    # And its host's CPU is unknown rather than a misleading 0%.
    assert client.get("/v1/hosts/h").json()["cpu_percent"] is None


@st.composite
def hosts_with_load(draw: st.DrawFn) -> Host:
    memory = draw(st.integers(min_value=0, max_value=1 << 20))
    metrics: dict[str, float] = {}
    if draw(st.booleans()):
        metrics["compute.node.cpu.percent"] = draw(st.floats(0, 400, allow_nan=False))
    if draw(st.booleans()):
        metrics["memory.used"] = draw(st.floats(0, 2 << 20, allow_nan=False))
    return Host(
        name="h",
        vcpus=draw(st.integers(min_value=1, max_value=512)),
        memory_mb=memory,
        memory_mb_used=draw(st.integers(min_value=0, max_value=max(memory, 1))),
        metrics=metrics,
    )


@settings(max_examples=60, deadline=None)
@given(host=hosts_with_load())
def test_derived_percentages_follow_the_metrics_or_the_nova_fields(host: Host) -> None:
    repos = MemoryRepositories()
    repos.upsert_hosts([host])
    body = TestClient(create_app(repos, dashboard=False)).get("/v1/hosts/h").json()
    assert body["cpu_percent"] == host.metrics.get("compute.node.cpu.percent")
    if host.memory_mb == 0:
        assert body["ram_percent"] is None
    else:
        used = host.metrics.get("memory.used", host.memory_mb_used)
        assert body["ram_percent"] == pytest.approx(100 * used / host.memory_mb)
    assert body["free_ram_mb"] == host.memory_mb - host.memory_mb_used
