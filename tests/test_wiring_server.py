"""build_server: the roles of `opendrs server` composed over a real SQLite store and
the in-memory bus with fake clouds, each surviving its dependency's failure
(counted, carried on); and the configuration it refuses, naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fakes.plans import migrate, saved_plan
from opendrs.bus import codec, subjects
from opendrs.bus.memory import MemoryBus
from opendrs.config import Settings
from opendrs.domain.action import ActionState, PlanState
from opendrs.domain.errors import DriverError, InvalidInput
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Flavor, Instance
from opendrs.domain.ports import Operation
from opendrs.domain.sample import EntityKind, Sample, SampleType
from opendrs.wiring import Server, build_server


class FlakyInventory:
    """A cloud of one host and one VM whose listing fails while `down`."""

    def __init__(self) -> None:
        self.down = True

    def list_hosts(self) -> list[Host]:
        if self.down:
            raise DriverError("libvirtd is not answering", transient=True)
        return [Host("h1", vcpus=8, memory_mb=16384)]

    def list_instances(self) -> list[Instance]:
        return [Instance("vm1", "h1", Flavor("small", 1, 1024))]


class NoActions:
    """A cloud where every VM is on h1 and refuses to move."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def start_migration(self, instance: str, destination: str, live: bool = True) -> str:
        self.asked.append((instance, destination))
        raise DriverError("no migrations here")

    def operation(self, operation_id: str) -> Operation:
        raise DriverError(f"unknown operation {operation_id}")

    def locate(self, instance: str) -> str | None:
        return "h1"

    def set_host_state(self, host: str, state: HostState, reason: str | None = None) -> None:
        raise DriverError("no host states here")


def settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'opendrs.db'}"},
            "history": {"directory": str(tmp_path / "history")},
            **extra,
        }
    )


@pytest.fixture
def server(tmp_path: Path) -> Any:
    bus = MemoryBus()
    cloud = FlakyInventory()
    made = build_server(
        settings(tmp_path),
        ("inventory", "ingest", "decision", "applier"),
        bus=bus,
        inventory=cloud,
        actions=NoActions(),
    )
    # The subscriptions only: the tests drive the rounds themselves, not the threads.
    for start in made.starters:
        start()
    try:
        yield made, bus, cloud
    finally:
        assert made.stop()
        bus.close()


def loop(server: Server, name: str) -> Any:
    return next(loop for loop in server.loops if loop.name == name)


def test_the_inventory_role_survives_an_unreachable_cloud(server: Any) -> None:
    made, _, cloud = server
    inventory = loop(made, "inventory")
    failures = inventory.failures
    assert not inventory.run_round()
    assert inventory.failures == failures + 1
    assert made.store.list_hosts() == []
    cloud.down = False
    assert inventory.run_round()
    assert [h.name for h in made.store.list_hosts()] == ["h1"]
    assert [i.name for i in made.store.list_instances()] == ["vm1"]


def test_the_ingest_role_keeps_samples_through_a_failed_write(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    made, bus, _ = server
    made.store.upsert_hosts([Host("h1", vcpus=8, memory_mb=16384)])
    sample = Sample(
        "compute.node.cpu.percent", "h1", 42.0, "%", SampleType.GAUGE, 1000.0, EntityKind.HOST, "h1"
    )
    bus.publish(f"{subjects.SAMPLES}.0", codec.samples_event([sample], source="test", time=1000.0))
    assert bus.drain()
    real = made.store.update_many_metrics

    def down(latest: Any) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(made.store, "update_many_metrics", down)
    ingest = loop(made, "ingest")
    ingest.run_round()
    assert made.status()["ingest_flush_failures"] == 1
    monkeypatch.setattr(made.store, "update_many_metrics", real)
    assert ingest.run_round()
    assert made.store.get_host("h1").metrics["compute.node.cpu.percent"] == 42.0
    assert made.status()["samples_ingested"] == 1


def test_the_decision_role_survives_a_store_that_fails(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    made, _, _ = server

    def down() -> list[Any]:
        raise RuntimeError("connection refused")

    monkeypatch.setattr(made.store, "list_scheduled_audits", down)
    decision = loop(made, "decision")
    decision.run_round()
    decision.run_round()
    assert made.status()["decision_failures"] == 2
    monkeypatch.undo()
    assert decision.run_round()
    assert made.status()["decision_failures"] == 2


def test_the_applier_role_resumes_once_then_advances_through_failures(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    made, _, _ = server
    applier = loop(made, "applier")
    real = made.store.list_plans

    def down(*args: Any, **kwargs: Any) -> list[Any]:
        raise RuntimeError("connection refused")

    monkeypatch.setattr(made.store, "list_plans", down)
    before = applier.failures
    assert not applier.run_round()
    assert not applier.run_round()
    assert applier.failures == before + 2
    monkeypatch.setattr(made.store, "list_plans", real)
    assert applier.run_round()
    assert applier.run_round()


def test_a_plan_approved_before_a_restart_is_started_and_reaches_the_driver(
    tmp_path: Path,
) -> None:
    config = settings(tmp_path)
    before = build_server(config, ("api",))  # the store as a previous process left it
    plan = saved_plan(before.store, migrate("vm1", "h1", "h2"))
    before.store.set_plan_state(plan.id, PlanState.PENDING, "approved by an operator")
    assert before.stop()

    actions = NoActions()
    bus = MemoryBus()
    after = build_server(config, ("applier",), bus=bus, actions=actions)
    try:
        assert loop(after, "applier").run_round()  # resume, then advance
        assert actions.asked == [("vm1", "h2")]
        ended = after.store.get_plan(plan.id)
        [action] = ended.actions
        assert (ended.state, action.state) == (PlanState.FAILED, ActionState.FAILED)
        assert "no migrations here" in action.message
    finally:
        assert after.stop()
        bus.close()


def test_status_reports_each_role(server: Any) -> None:
    made, _, _ = server
    status = made.status()
    assert status["roles"] == ["inventory", "ingest", "decision", "applier"]
    assert set(status["loops"]) == {"inventory", "ingest", "decision", "applier"}


def test_the_cloud_roles_need_libvirt_hosts(tmp_path: Path) -> None:
    with pytest.raises(
        InvalidInput, match=r"cloud\.driver: .*needs `libvirt` or `openstack`, got 'sim'"
    ):
        build_server(settings(tmp_path), ("inventory",), bus=MemoryBus())
    with pytest.raises(InvalidInput, match=r"cloud\.libvirt\.hosts: name the hosts"):
        build_server(settings(tmp_path, cloud={"driver": "libvirt"}), ("applier",), bus=MemoryBus())


def test_an_unknown_role_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"--role: unknown roles \['planner'\]"):
        build_server(settings(tmp_path), ("api", "planner"))
