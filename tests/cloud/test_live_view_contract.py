"""The LiveView contract, run against every driver that offers one: an instance is
found where `locate` says with its real flavor and a gone one is None; a host comes
with its capacity, state and allocation policy and the instances on it; an unknown
host is NotFound. The libvirt driver runs on libvirt's test:/// driver."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Test dependencies (the `libvirt` and `openstack` extras): missing, the module
# fails to import, loudly.
import libvirt  # noqa: F401
import numpy as np
import openstack  # noqa: F401
import pytest

from fakes.nova_replay import nova_replay, sdk_connection
from fakes.plans import migrate, run_to_end, saved_plan
from fakes.repositories import MemoryRepositories
from opendrs.applier import PlanExecutor
from opendrs.applier.inventory_view import InventoryView
from opendrs.cloud.libvirt_actions import LibvirtActions
from opendrs.cloud.openstack_live import LiveNovaActions
from opendrs.cloud.sim.cloud import SimCloud
from opendrs.cloud.sim.power import PowerModel
from opendrs.cloud.sim.specs import HostSpec, VmSpec
from opendrs.cloud.sim.traces import Trace
from opendrs.domain.action import ActionState
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import NotFound
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import InstanceState
from opendrs.domain.ports import CloudActions, LiveView, Operation

FIXTURES = Path(__file__).parent / "fixtures"
# The SDK warns about its own deprecations, and that the replay offers no Placement
# version document (it then talks plain REST, as this driver does anyway).
pytestmark = [
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Service placement has no discoverable version"),
]


@dataclass(frozen=True)
class World:
    """A driver on a cloud where `instance` (of `vcpus` and `memory_mb`) runs on
    `host`, `other` is an empty enabled host and `closed` one that is disabled."""

    driver: CloudActions
    instance: str
    host: str
    other: str
    closed: str
    vcpus: int
    memory_mb: int
    host_vcpus: int
    host_memory_mb: int


@contextmanager
def libvirt_world() -> Iterator[World]:
    repo = MemoryRepositories()
    repo.upsert_hosts(
        [
            Host("src", vcpus=1, memory_mb=1, cpu_allocation_ratio=4.0, reserved_host_cpus=1),
            Host("dst", vcpus=1, memory_mb=1),
            Host("shut", vcpus=1, memory_mb=1, state=HostState.DISABLED, disabled_reason="fans"),
        ]
    )
    uris = {
        "src": f"test://{FIXTURES / 'actions_src.xml'}",
        "dst": f"test://{FIXTURES / 'actions_dst.xml'}",
        "shut": f"test://{FIXTURES / 'actions_dst.xml'}",
    }
    driver = LibvirtActions(uris, repo, launch=lambda call: pytest.fail("nothing migrates"))
    try:
        yield World(driver, "vm-a", "src", "dst", "shut", 1, 1024, 4, 8192)
    finally:
        driver.close()


@contextmanager
def sim_inventory_world() -> Iterator[World]:
    """The demo's simulated cloud, which has an inventory only, through InventoryView."""
    power = PowerModel([10.0 * i for i in range(11)])
    hosts = [HostSpec(n, 4, 1000.0, 16384, 500, 1000.0, power) for n in ("s1", "s2", "s3")]
    vm = VmSpec("v1", 2, 1000.0, 2048, 20, Trace("v1", np.full(289, 0.5)))
    cloud = SimCloud(hosts, [vm], {"v1": "s1"}, ManualClock(1000.0))
    cloud.set_host_state("s3", HostState.DISABLED, "fans")
    yield World(SimActionsWithView(cloud), "v1", "s1", "s2", "s3", 2, 2048, 4, 16384)


class SimActionsWithView(InventoryView):
    """The simulated cloud's actions with InventoryView's live view, as the demo's
    wiring would hand them to the applier."""

    def __init__(self, cloud: SimCloud) -> None:
        super().__init__(cloud)
        self.cloud = cloud

    def start_migration(self, instance: str, destination: str, live: bool = True) -> str:
        return self.cloud.start_migration(instance, destination, live)

    def operation(self, operation_id: str) -> Operation:
        return self.cloud.operation(operation_id)

    def locate(self, instance: str) -> str | None:
        return self.cloud.locate(instance)

    def set_host_state(self, host: str, state: HostState, reason: str | None = None) -> None:
        self.cloud.set_host_state(host, state, reason)


@contextmanager
def nova_world() -> Iterator[World]:
    """Nova's API and Placement, replayed over HTTP through the real openstacksdk."""
    with nova_replay("live_view") as replay:
        driver = LiveNovaActions(sdk_connection(replay))
        yield World(driver, "s1", "c1", "c2", "c3", 2, 2048, 8, 16384)
    assert replay.requests("POST") == []  # the contract never migrates anything


WORLDS = {"libvirt": libvirt_world, "nova": nova_world, "sim-inventory": sim_inventory_world}


@pytest.fixture(params=sorted(WORLDS))
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    with WORLDS[request.param]() as made:
        yield made


def view(world: World) -> LiveView:
    assert isinstance(world.driver, LiveView)
    return world.driver


def test_an_instance_is_found_where_it_runs_with_its_flavor(world: World) -> None:
    found = view(world).instance_now(world.instance)
    assert found is not None
    assert found.host == world.host == world.driver.locate(world.instance)
    assert (found.vcpus, found.memory_mb) == (world.vcpus, world.memory_mb)
    assert found.state == InstanceState.ACTIVE


def test_a_gone_instance_is_none(world: World) -> None:
    assert view(world).instance_now("no-such-instance") is None


def test_a_host_comes_with_its_capacity_policy_and_instances(world: World) -> None:
    occupancy = view(world).host_now(world.host)
    host = occupancy.host
    assert host.name == world.host
    assert (host.vcpus, host.memory_mb) == (world.host_vcpus, world.host_memory_mb)
    assert host.state == HostState.ENABLED
    assert [i.name for i in occupancy.instances] == [world.instance]
    assert all(i.host == world.host for i in occupancy.instances)
    assert view(world).host_now(world.other).instances == ()


def test_a_disabled_host_says_so_with_its_reason(world: World) -> None:
    host = view(world).host_now(world.closed).host
    assert (host.state, host.disabled_reason) == (HostState.DISABLED, "fans")


def test_an_unknown_host_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        view(world).host_now("no-such-host")


def test_libvirt_keeps_the_allocation_policy_opendrs_records() -> None:
    with libvirt_world() as world:
        host = view(world).host_now("src").host
        assert (host.cpu_allocation_ratio, host.reserved_host_cpus) == (4.0, 1)
        assert host.allocatable_vcpus == 12.0


def test_the_applier_refuses_a_move_to_a_disabled_host_without_migrating(world: World) -> None:
    repo = MemoryRepositories()
    plan = saved_plan(repo, migrate(world.instance, world.host, world.closed))
    executor = PlanExecutor(repo, world.driver, ManualClock(1000.0))
    executor.start(plan.id)
    [refused] = run_to_end(executor, plan.id).actions
    assert refused.state == ActionState.FAILED
    assert refused.message == f"{world.closed} is disabled (fans); {world.instance} not moved there"
    assert world.driver.locate(world.instance) == world.host


def test_nova_hosts_are_read_from_placement_and_their_compute_service() -> None:
    with nova_world() as world:
        nova = view(world)
        c1 = nova.host_now("c1").host
        down = nova.host_now("c4").host
        maintenance = nova.host_now("c5").host
    assert (c1.allocatable_vcpus, c1.allocatable_memory_mb) == (28.0, 23808.0)
    assert (c1.vcpus_used, c1.memory_mb_used, c1.local_gb_used) == (2, 2048, 20)
    assert (down.state, down.disabled_reason) == (HostState.DISABLED, "nova-compute is down")
    assert maintenance.state == HostState.MAINTENANCE
    assert maintenance.disabled_reason == "maintenance: firmware"
