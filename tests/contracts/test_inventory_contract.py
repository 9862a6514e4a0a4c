"""The CloudInventory contract, run against every inventory: the simulated cloud,
libvirt (on libvirt's test:/// driver) and OpenStack (openstacksdk against a replay
of Nova and Placement). Each host is listed once with its
capacity and the use of the instances on it; each instance once, on a listed
host, with its flavor; a host state set through the driver's actions survives an
inventory refresh; a refresh of an unchanged cloud changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# A test dependency (the `libvirt` extra): missing, the module fails to import, loudly.
import libvirt  # noqa: F401
import numpy as np

# The `openstack` extra, a test dependency too.
import openstack  # noqa: F401
import pytest

from fakes.nova_replay import Replay, nova_replay, sdk_connection
from fakes.repositories import MemoryRepositories
from opendrs.cloud.libvirt_actions import LibvirtActions
from opendrs.cloud.libvirt_inventory import LibvirtInventory
from opendrs.cloud.openstack import NovaActions
from opendrs.cloud.openstack_inventory import OpenstackInventory
from opendrs.cloud.sim.cloud import SimCloud
from opendrs.cloud.sim.power import PowerModel
from opendrs.cloud.sim.specs import HostSpec, VmSpec
from opendrs.cloud.sim.traces import Trace
from opendrs.domain.clock import ManualClock
from opendrs.domain.host import HostState
from opendrs.domain.ports import CloudActions, CloudInventory
from opendrs.services.inventory import InventorySync

FIXTURES = Path(__file__).parent.parent / "cloud" / "fixtures"


@dataclass(frozen=True)
class World:
    """An inventory whose cloud has `hosts` and `instances` (name -> host,
    vcpus, memory_mb); `actions` changes host states; `records` is the model."""

    inventory: CloudInventory
    actions: CloudActions
    records: MemoryRepositories
    hosts: frozenset[str]
    instances: dict[str, tuple[str, int, int]]


@contextmanager
def libvirt_world() -> Iterator[World]:
    records = MemoryRepositories()
    uris = {
        "src": f"test://{FIXTURES / 'actions_src.xml'}",
        "dst": f"test://{FIXTURES / 'actions_dst.xml'}",
    }
    inventory = LibvirtInventory(uris, records)
    actions = LibvirtActions(uris, records, launch=lambda call: pytest.fail("nothing migrates"))
    try:
        yield World(inventory, actions, records, frozenset(uris), {"vm-a": ("src", 1, 1024)})
    finally:
        inventory.close()
        actions.close()


@contextmanager
def sim_world() -> Iterator[World]:
    power = PowerModel([10.0 * i for i in range(11)])
    hosts = [HostSpec(n, 4, 1000.0, 16384, 500, 1000.0, power) for n in ("s1", "s2")]
    vms = [
        VmSpec("v1", 2, 1000.0, 2048, 20, Trace("v1", np.full(289, 0.5))),
        VmSpec("v2", 1, 1000.0, 1024, 20, Trace("v2", np.full(289, 0.5))),
    ]
    cloud = SimCloud(hosts, vms, {"v1": "s1", "v2": "s1"}, ManualClock(1000.0))
    yield World(
        cloud,
        cloud,
        MemoryRepositories(),
        frozenset({"s1", "s2"}),
        {"v1": ("s1", 2, 2048), "v2": ("s1", 1, 1024)},
    )


class RecordingNova(NovaActions):
    """NovaActions on the replay, which then lists the service as Nova answered
    the PUT that changed it (the replay itself keeps no state)."""

    def __init__(self, replay: Replay) -> None:
        super().__init__(sdk_connection(replay))
        self._replay = replay

    def set_host_state(self, host: str, state: HostState, reason: str | None = None) -> None:
        super().set_host_state(host, state, reason)
        put = self._replay.requests("PUT")[-1]
        changed = self._replay.exchanges[("PUT", put.path)][-1]["body"]["service"]
        key = ("GET", "/os-services?binary=nova-compute")
        listing = self._replay.exchanges[key][-1]["body"]["services"]
        services = [changed if s["id"] == changed["id"] else s for s in listing]
        self._replay.exchanges[key] = [{"status": 200, "body": {"services": services}}]


@contextmanager
def openstack_world() -> Iterator[World]:
    with nova_replay("inventory_contract") as replay:
        yield World(
            OpenstackInventory(sdk_connection(replay)),
            RecordingNova(replay),
            MemoryRepositories(),
            frozenset({"n1", "n2"}),
            {"v1": ("n1", 2, 2048), "v2": ("n1", 1, 1024)},
        )


WORLDS = {"libvirt": libvirt_world, "openstack": openstack_world, "sim": sim_world}


@pytest.fixture(params=sorted(WORLDS))
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    with WORLDS[request.param]() as made:
        yield made


def test_each_host_is_listed_once_with_its_capacity_and_use(world: World) -> None:
    hosts = world.inventory.list_hosts()
    assert sorted(h.name for h in hosts) == sorted(world.hosts)
    for host in hosts:
        assert host.vcpus > 0 and host.memory_mb > 0
        mine = [spec for spec in world.instances.values() if spec[0] == host.name]
        assert host.vcpus_used == sum(vcpus for _, vcpus, _ in mine)
        assert host.memory_mb_used >= sum(memory for _, _, memory in mine)
        assert host.running_vms == len(mine)


def test_each_instance_is_listed_once_on_a_listed_host_with_its_flavor(world: World) -> None:
    instances = world.inventory.list_instances()
    assert sorted(i.name for i in instances) == sorted(world.instances)
    for instance in instances:
        assert (instance.host, instance.vcpus, instance.memory_mb) == world.instances[instance.name]
        assert instance.live


def test_a_host_state_set_through_the_driver_survives_a_refresh(world: World) -> None:
    sync = InventorySync(world.inventory, world.records)
    assert sync.sync()
    host = sorted(world.hosts)[0]
    world.actions.set_host_state(host, HostState.DISABLED, "fans")
    assert sync.sync()
    stored = world.records.get_host(host)
    assert (stored.state, stored.disabled_reason) == (HostState.DISABLED, "fans")


def test_a_refresh_of_an_unchanged_cloud_changes_nothing(world: World) -> None:
    sync = InventorySync(world.inventory, world.records)
    assert sync.sync()
    first = (world.records.list_hosts(), world.records.list_instances())
    assert sync.sync()
    assert (world.records.list_hosts(), world.records.list_instances()) == first
