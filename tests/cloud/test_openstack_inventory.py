"""The OpenStack inventory through the real openstacksdk over HTTP, against recorded
exchanges shaped by Nova's and Placement's API references
(tests/cloud/fixtures/nova/inventory*.json, placement_unavailable.json)."""

from __future__ import annotations

import json

# A test dependency (the `openstack` extra): missing, the module fails to import, loudly.
import openstack  # noqa: F401
import pytest

from fakes.nova_replay import FIXTURES, nova_replay, sdk_connection
from fakes.repositories import MemoryRepositories
from opendrs.cloud.openstack_inventory import OpenstackInventory
from opendrs.domain.errors import DriverError
from opendrs.domain.host import HostState
from opendrs.domain.instance import GroupPolicy, InstanceState, ServerGroup
from opendrs.services.inventory import InventorySync

pytestmark = pytest.mark.filterwarnings(
    "ignore::PendingDeprecationWarning",
    # Placement has no version document in the replay; the SDK says so, once.
    "ignore:Service placement has no discoverable version",
)


def server_id(n: int) -> str:
    return f"5a1e0000-0000-4000-8000-0000000000{n:02d}"


WEB = "a1a1a1a1-0000-4000-8000-000000000001"
SOFT = "a1a1a1a1-0000-4000-8000-000000000002"


def test_hosts_are_the_compute_services_sized_by_placement() -> None:
    with nova_replay("inventory") as replay:
        inventory = OpenstackInventory(sdk_connection(replay))
        hosts = {h.name: h for h in inventory.list_hosts()}
        errors = inventory.drain_errors()
    # c5's service has no compute node yet: skipped, and said so.
    assert sorted(hosts) == ["c1", "c2", "c3", "c4"]
    assert errors == ["nova-compute on c5 has no hypervisor (yet)"]
    assert inventory.failures["c5"] == 1
    c1 = hosts["c1"]
    assert (c1.vcpus, c1.memory_mb, c1.local_gb) == (8, 16384, 200)
    assert (c1.cpu_allocation_ratio, c1.ram_allocation_ratio) == (4.0, 1.5)
    assert (c1.reserved_host_cpus, c1.reserved_host_memory_mb) == (1, 512)
    assert (c1.vcpus_used, c1.memory_mb_used, c1.local_gb_used) == (3, 2560, 21)
    # Nova's running_vms counts every server on the node, the stopped one too.
    assert c1.running_vms == 2
    assert (c1.hypervisor_type, c1.hypervisor_version) == ("QEMU", 8002000)
    assert (c1.availability_zone, hosts["c3"].availability_zone) == ("az1", "az2")
    assert (c1.aggregates, hosts["c3"].aggregates, hosts["c2"].aggregates) == (
        ("ssd",),
        ("az2-hosts", "ssd"),
        (),
    )
    assert (c1.state, c1.disabled_reason) == (HostState.ENABLED, None)


def test_host_state_is_the_compute_service_state() -> None:
    with nova_replay("inventory") as replay:
        hosts = {h.name: h for h in OpenstackInventory(sdk_connection(replay)).list_hosts()}
    assert (hosts["c3"].state, hosts["c3"].disabled_reason) == (
        HostState.MAINTENANCE,
        "maintenance: firmware",
    )
    assert (hosts["c4"].state, hosts["c4"].disabled_reason) == (
        HostState.DISABLED,
        "nova-compute is down",
    )


def test_instances_are_every_placed_server_of_every_project_over_all_pages() -> None:
    with nova_replay("inventory") as replay:
        inventory = OpenstackInventory(sdk_connection(replay))
        instances = {i.name: i for i in inventory.list_instances()}
    listed = [s.path for s in replay.requests("GET") if s.path.startswith("/servers/detail")]
    assert listed == [
        "/servers/detail?all_tenants=True",
        f"/servers/detail?all_tenants=True&marker={server_id(3)}",
    ]
    # Server 5 went to ERROR before a host was found: it holds nothing anywhere.
    assert sorted(instances) == [server_id(n) for n in (1, 2, 3, 4, 6)]
    web = instances[server_id(1)]
    assert (web.host, web.vcpus, web.memory_mb, web.disk_gb) == ("c1", 2, 2048, 20)
    assert web.flavor.name == "m1.small"
    assert not web.movable  # never_migrate=true in the server's metadata
    assert web.metadata["display_name"] == "web-1"
    assert web.project == "6f70656e737461636b20342065766572"
    states = {name: i.state for name, i in instances.items()}
    assert states == {
        server_id(1): InstanceState.ACTIVE,
        server_id(2): InstanceState.STOPPED,
        server_id(3): InstanceState.ACTIVE,
        server_id(4): InstanceState.ERROR,
        server_id(6): InstanceState.MIGRATING,
    }
    assert instances[server_id(2)].project == "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"


def test_server_groups_come_with_their_policy_and_members() -> None:
    with nova_replay("inventory") as replay:
        inventory = OpenstackInventory(sdk_connection(replay))
        instances = {i.name: i for i in inventory.list_instances()}
        groups = inventory.list_groups()
    [asked] = [s.path for s in replay.requests("GET") if s.path.startswith("/os-server-groups")]
    assert asked == "/os-server-groups?all_projects=True"
    assert groups == [
        ServerGroup(WEB, GroupPolicy.ANTI_AFFINITY),
        ServerGroup(SOFT, GroupPolicy.SOFT_AFFINITY),
    ]
    assert instances[server_id(1)].groups == (WEB,)
    assert instances[server_id(3)].groups == (WEB, SOFT)
    assert instances[server_id(4)].groups == ()


def test_one_refresh_is_one_pass_at_the_microversions_that_carry_what_is_read() -> None:
    with nova_replay("inventory") as replay:
        inventory = OpenstackInventory(sdk_connection(replay))
        inventory.list_hosts()
        inventory.list_instances()
    sent = {s.path: s.microversion for s in replay.requests("GET")}
    paths = [s.path for s in replay.requests("GET")]
    assert paths.count("/servers/detail?all_tenants=True") == 1
    assert paths.count("/os-hypervisors/detail") == 1
    assert sent["/os-hypervisors/detail"] == "compute 2.88"
    assert sent["/os-server-groups?all_projects=True"] == "compute 2.64"
    # 2.47 and later embed the flavor in the server.
    version = str(sent["/servers/detail?all_tenants=True"]).removeprefix("compute ")
    assert tuple(int(p) for p in version.split(".")) >= (2, 47)


def test_a_failed_refresh_keeps_the_model_and_says_placement_is_unavailable() -> None:
    with nova_replay("inventory", "placement_unavailable") as replay:
        inventory = OpenstackInventory(sdk_connection(replay))
        records = MemoryRepositories()
        sync = InventorySync(inventory, records)
        assert sync.sync()
        before = (records.list_hosts(), records.list_instances())
        with pytest.raises(DriverError, match="Placement answered 503") as caught:
            inventory.list_hosts()
        assert caught.value.transient
        assert not sync.sync()
    assert sync.failures == 1
    assert (records.list_hosts(), records.list_instances()) == before


def test_a_host_placement_cannot_size_is_skipped_saying_why() -> None:
    node = "/resource_providers/9f6a3a5e-1b1c-4c52-9a38-0c1b6a1f00{:02d}"
    with nova_replay("inventory") as replay:
        replay.exchanges[("GET", node.format(1) + "/inventories")] = [
            {"status": 404, "body": {"errors": [{"status": 404, "title": "Not Found"}]}}
        ]
        replay.exchanges[("GET", node.format(2) + "/usages")] = [
            {"status": 200, "body": {"usages": {"VCPU": "lots"}}}
        ]
        inventory = OpenstackInventory(sdk_connection(replay))
        hosts = [h.name for h in inventory.list_hosts()]
        errors = inventory.drain_errors()
    assert hosts == ["c3", "c4"]
    assert errors[0] == f"Placement does not know {node.format(1)}/inventories"
    assert errors[1].startswith("host c2: Nova or Placement answered nonsense")
    assert (inventory.failures["c1"], inventory.failures["c2"]) == (1, 1)


def test_nova_answering_an_error_is_a_driver_error_saying_so() -> None:
    with nova_replay("inventory") as replay:
        replay.exchanges[("GET", "/servers/detail?all_tenants=True")] = [
            {"status": 503, "body": {"computeFault": {"code": 503, "message": "busy"}}}
        ]
        replay.exchanges[("GET", "/os-services?binary=nova-compute")] = [
            {"status": 403, "body": {"forbidden": {"code": 403, "message": "admin only"}}}
        ]
        inventory = OpenstackInventory(sdk_connection(replay))
        with pytest.raises(DriverError, match="list the servers: Nova answered 503") as busy:
            inventory.list_instances()
        with pytest.raises(DriverError, match="list the compute services: Nova answered 403") as no:
            inventory.list_hosts()
    assert busy.value.transient
    assert not no.value.transient


def test_an_unreachable_nova_is_a_transient_driver_error() -> None:
    with nova_replay("inventory") as replay:
        connection = sdk_connection(replay)
        connection.compute.get_endpoint()  # discovered while the cloud is up
    with pytest.raises(DriverError) as caught:
        OpenstackInventory(connection).list_instances()
    assert caught.value.transient


def test_a_server_that_only_links_its_flavor_is_sized_by_the_flavor() -> None:
    """Before microversion 2.47 a server carries its flavor's id, not its size."""
    recorded = json.loads((FIXTURES / "inventory.json").read_text())["exchanges"]
    [page] = [e for e in recorded if e["request"]["path"] == "/servers/detail?all_tenants=True"]
    old = dict(page["response"]["body"]["servers"][0], flavor={"id": "f1", "links": []})
    flavor = {"id": "f1", "name": "m1.old", "vcpus": 3, "ram": 3072, "disk": 30}
    with nova_replay("inventory") as replay:
        replay.exchanges[("GET", "/servers/detail?all_tenants=True")] = [
            {"status": 200, "body": {"servers": [old, old | {"id": "twin"}]}}
        ]
        replay.exchanges[("GET", "/flavors/f1")] = [{"status": 200, "body": {"flavor": flavor}}]
        instances = OpenstackInventory(sdk_connection(replay)).list_instances()
    assert [(i.flavor.name, i.vcpus, i.memory_mb, i.disk_gb) for i in instances] == [
        ("m1.old", 3, 3072, 30)
    ] * 2
    assert [s.path for s in replay.requests("GET")].count("/flavors/f1") == 1
