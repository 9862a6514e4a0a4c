"""Evacuation marks through the services, on the in-memory repositories and a fake
cloud: a host's evacuation records where each migrated instance came from, a
host_return while the host is still in maintenance moves nothing, bringing the host
back returns those instances and clears their marks; failed migrations, later
moves, new evacuations and deletions are handled as documented in decision.md."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from fakes.driver import FakeDriver
from fakes.optimization_setup import optimization_over
from fakes.repositories import MemoryRepositories
from opendrs.applier.executor import PlanExecutor
from opendrs.applier.progress import publishing_hook
from opendrs.bus import subjects
from opendrs.bus.memory import MemoryBus
from opendrs.domain.action import (
    FINAL_PLAN_STATES,
    Action,
    ActionPlan,
    ActionType,
    PlanLimits,
    PlanState,
)
from opendrs.domain.audit import Audit, AuditState
from opendrs.domain.clock import ManualClock
from opendrs.domain.evacuation import EvacuationMark
from opendrs.domain.event import Event
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Flavor, Instance
from opendrs.services.inventory import InventorySync
from opendrs.services.optimization import Optimization

FLAVOR = Flavor("small", 2, 2048, 10)


@dataclass
class Cloud:
    """The cloud inventory as the fake driver leaves it."""

    driver: FakeDriver
    hosts: dict[str, Host]
    flavors: dict[str, Flavor] = field(default_factory=dict)

    def list_hosts(self) -> list[Host]:
        return [
            replace(h, state=self.driver.host_states.get(h.name, h.state))
            for h in self.hosts.values()
        ]

    def list_instances(self) -> list[Instance]:
        return [Instance(n, h, FLAVOR) for n, h in sorted(self.driver.placement.items())]


@dataclass
class Scene:
    repos: MemoryRepositories
    bus: MemoryBus
    clock: ManualClock
    cloud: Cloud
    executor: PlanExecutor
    optimization: Optimization
    inventory: InventorySync

    def publish(self, subject: str, host: str, **data: object) -> None:
        self.bus.publish(
            subject,
            Event(type="test", source="test", time=self.clock.now(), subject=host, data=data),
        )

    def settle(self) -> list[ActionPlan]:
        """Run every plan to its end, then refresh the model from the cloud."""
        for _ in range(100):
            if not self.executor.advance_all():
                break
            self.clock.advance(10.0)
        self.inventory.sync()
        return self.repos.list_plans(limit=1000)

    def marks(self) -> dict[str, str]:
        return {m.instance: m.host for m in self.repos.list_evacuations()}

    def where(self) -> dict[str, str]:
        return dict(self.cloud.driver.placement)


@pytest.fixture
def scene() -> Scene:
    clock = ManualClock(1000.0)
    repos = MemoryRepositories()
    bus = MemoryBus()
    driver = FakeDriver({"a": "m", "b": "m", "c": "o1", "d": "o2"})
    hosts = {n: Host(n, vcpus=16, memory_mb=16384, local_gb=500) for n in ("m", "o1", "o2")}
    cloud = Cloud(driver, hosts)
    executor = PlanExecutor(
        repos,
        driver,
        clock,
        PlanLimits(),
        on_transition=publishing_hook(bus, subjects.PLAN_PROGRESS, clock),
    )
    optimization = optimization_over(
        repos, clock, bus=bus, launch=executor.submit, evacuations=repos
    )
    optimization.start()
    inventory = InventorySync(cloud, repos, bus, clock)
    inventory.sync()
    return Scene(repos, bus, clock, cloud, executor, optimization, inventory)


def evacuate(scene: Scene, host: str = "m") -> ActionPlan:
    scene.publish(subjects.HOST_STATE, host, state="maintenance")
    plans = scene.settle()
    evacuation = next(p for p in plans if any(a.source == host for a in p.actions))
    assert evacuation.state in FINAL_PLAN_STATES
    return evacuation


def enable(scene: Scene, host: str = "m") -> None:
    """The operator ends maintenance in the cloud and asks for the instances back."""
    scene.cloud.driver.set_host_state(host, HostState.ENABLED)
    scene.inventory.sync()
    scene.publish(subjects.HOST_STATE, host, state="enabled", bring_back=True)
    scene.settle()


def test_an_evacuated_host_gets_its_instances_back_and_the_marks_end(scene: Scene) -> None:
    plan = evacuate(scene)
    assert plan.state == PlanState.SUCCEEDED
    assert scene.where()["a"] != "m" and scene.where()["b"] != "m"
    marks = scene.repos.list_evacuations()
    finished = {a.instance: a.finished_at for a in plan.actions if a.type == ActionType.MIGRATE}
    assert marks == [
        EvacuationMark(name, "m", plan.audit_id, plan.id, at=finished[name]) for name in ("a", "b")
    ]

    enable(scene)
    assert scene.where() == {"a": "m", "b": "m", "c": "o1", "d": "o2"}
    assert scene.marks() == {}
    returned = scene.repos.list_audits()[0]
    assert (returned.strategy, returned.state) == ("host_return", AuditState.SUCCEEDED)


def test_a_return_while_the_host_is_in_maintenance_moves_nothing(scene: Scene) -> None:
    evacuate(scene)
    before = scene.where()
    for parameters in ({"maintenance_node": "m"}, {"maintenance_node": "m", "instances": ["a"]}):
        scene.publish(
            subjects.AUDIT_REQUESTS,
            "m",
            goal="host_maintenance",
            strategy="host_return",
            parameters=parameters,
        )
        scene.settle()
        audit = scene.repos.list_audits()[0]
        assert audit.strategy == "host_return"
        assert "m is still maintenance" in audit.message
    assert scene.where() == before
    assert scene.cloud.driver.host_states["m"] == HostState.MAINTENANCE
    assert scene.marks() == {"a": "m", "b": "m"}


def test_only_instances_that_actually_left_are_marked(scene: Scene) -> None:
    scene.cloud.driver.fail_migration["b"] = "no route to host"
    plan = evacuate(scene)
    assert plan.state == PlanState.FAILED
    assert scene.where()["b"] == "m"
    assert scene.marks() == {"a": "m"}

    enable(scene)
    assert scene.where()["a"] == "m"
    assert scene.marks() == {}


def test_an_instance_moved_elsewhere_meanwhile_still_returns(scene: Scene) -> None:
    evacuate(scene)
    first = scene.where()["a"]
    elsewhere = "o2" if first == "o1" else "o1"
    # Another audit's plan (not an evacuation) moves it on: it still came from m.
    # (Its parameters name the host a leaves, yet it is no maintenance evacuation.)
    balance = Audit(goal="workload_balance", strategy="", parameters={"maintenance_node": first})
    scene.repos.save_audit(balance)
    moved = ActionPlan(
        balance.id,
        (
            Action(
                ActionType.MIGRATE,
                {"instance": "a", "source": first, "destination": elsewhere, "live": True},
            ),
        ),
    )
    scene.repos.save_plan(moved)
    scene.executor.start(moved.id)
    scene.settle()
    assert scene.where()["a"] == elsewhere
    assert scene.marks() == {"a": "m", "b": "m"}

    enable(scene)
    assert scene.where()["a"] == "m"
    assert scene.marks() == {}


def test_a_later_evacuation_replaces_the_mark(scene: Scene) -> None:
    evacuate(scene)
    landed = scene.where()["a"]
    on_landed = sorted(n for n, h in scene.where().items() if h == landed)
    # m is still in maintenance when the host a landed on is evacuated in turn.
    evacuate(scene, landed)
    marks = scene.marks()
    assert {n: marks[n] for n in on_landed} == dict.fromkeys(on_landed, landed)
    assert marks["b"] == ("m" if "b" not in on_landed else landed)

    # Bringing that host back returns a there, not to m.
    enable(scene, landed)
    assert scene.where()["a"] == landed
    assert set(scene.marks()) == ({"b"} if "b" not in on_landed else set())


def test_a_deleted_instance_loses_its_mark(scene: Scene) -> None:
    evacuate(scene)
    del scene.cloud.driver.placement["a"]
    scene.inventory.sync()  # announces the deletion on the bus
    assert scene.marks() == {"b": "m"}


def test_a_mark_of_an_instance_the_model_lost_is_dropped_at_the_next_audit(
    scene: Scene,
) -> None:
    evacuate(scene)
    # Gone from the model without the announcement (the service was down, say).
    scene.repos.remove_instances_not_in(["a", "c", "d"])
    scene.optimization.run(Audit(goal="overload_relief", strategy="", created_at=2000.0))
    assert scene.marks() == {"a": "m"}


def test_the_event_may_name_the_instances_to_bring_back(scene: Scene) -> None:
    evacuate(scene)
    scene.cloud.driver.set_host_state("m", HostState.ENABLED)
    scene.inventory.sync()
    scene.publish(subjects.HOST_STATE, "m", state="enabled", bring_back=True, instances=["b"])
    scene.settle()
    assert scene.where()["b"] == "m" and scene.where()["a"] != "m"
    assert scene.marks() == {"a": "m"}
