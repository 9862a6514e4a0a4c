"""libvirt's inventory on libvirt's test:/// driver: capacity and use of each host
merged with opendrs's own record of it, domains with their flavor, state and
metadata, a domain defined on two hosts counted where it runs, and a host that
cannot be read skipped without losing its instances."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

# A test dependency (the `libvirt` extra): missing, the module fails to import, loudly.
import libvirt
import pytest

from fakes.repositories import MemoryRepositories
from opendrs.cloud.libvirt_inventory import LibvirtInventory
from opendrs.domain.errors import DriverError
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Flavor, Instance, InstanceState
from opendrs.services.inventory import InventorySync

FIXTURES = Path(__file__).parent / "fixtures"
NODE = f"test://{FIXTURES / 'node.xml'}"
SRC = f"test://{FIXTURES / 'actions_src.xml'}"
DST = f"test://{FIXTURES / 'actions_dst.xml'}"
UNREACHABLE = "qemu+tcp://127.0.0.1:1/system"  # nothing listens on port 1

TWICE = """<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads><mhz>2000</mhz></cpu>
  <memory>4194304</memory>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>vm-a</name>
    <test:runstate>5</test:runstate>
    <memory>1048576</memory>
    <vcpu>1</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
  </domain>
  <domain type='test'>
    <name>marked</name>
    <metadata>
      <opendrs:instance xmlns:opendrs='urn:opendrs:instance:1'>
        <opendrs:meta key='never_migrate'>true</opendrs:meta>
        <opendrs:meta key='tier'> gold </opendrs:meta>
      </opendrs:instance>
    </metadata>
    <memory>524288</memory>
    <vcpu>1</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
  </domain>
</node>
"""


def test_hosts_have_libvirts_capacity_and_the_use_of_their_domains() -> None:
    inventory = LibvirtInventory({"node": NODE}, MemoryRepositories())
    [host] = inventory.list_hosts()
    assert (host.name, host.vcpus, host.memory_mb) == ("node", 16, 65536)
    assert host.hypervisor_type == "TEST"
    assert '"model": "x86_64"' in host.cpu_info
    instances = inventory.list_instances()
    assert host.vcpus_used == sum(i.vcpus for i in instances)
    assert host.memory_mb_used == sum(i.memory_mb for i in instances)
    # the shut-off domain keeps its place but does not run
    assert host.running_vms == len(instances) - 1
    # node.xml's pool as the test driver reports it (it ignores the sizes given):
    # 100 GB, all of it free
    assert (host.local_gb, host.local_gb_used, host.disk_available_least) == (100, 0, 100)
    inventory.close()


def test_domains_become_instances_with_novas_flavor_and_owners() -> None:
    inventory = LibvirtInventory({"node": NODE}, MemoryRepositories())
    found = {i.name: i for i in inventory.list_instances()}
    web = found["web-1"]
    assert web.host == "node"
    assert web.flavor == Flavor("m1.large", 4, 8192, 80)
    assert web.project == "p-1"
    assert web.metadata == {"display_name": "web server", "user_id": "u-1", "project_id": "p-1"}
    assert found["off-1"].state == InstanceState.STOPPED
    assert found["off-1"].flavor == Flavor("libvirt", 2, 2048, 0)  # no Nova metadata
    assert found["db-1"].state == InstanceState.ACTIVE
    inventory.close()


def test_opendrs_metadata_of_a_domain_reaches_the_instance(tmp_path: Path) -> None:
    (tmp_path / "twice.xml").write_text(TWICE)
    inventory = LibvirtInventory({"h": f"test://{tmp_path / 'twice.xml'}"}, MemoryRepositories())
    marked = {i.name: i for i in inventory.list_instances()}["marked"]
    assert marked.metadata == {"never_migrate": "true", "tier": "gold"}
    assert not marked.movable
    inventory.close()


def test_what_opendrs_records_of_a_host_survives_a_refresh() -> None:
    records = MemoryRepositories()
    records.upsert_hosts(
        [
            Host(
                "src",
                vcpus=1,
                memory_mb=1,
                state=HostState.MAINTENANCE,
                disabled_reason="firmware",
                cpu_allocation_ratio=4.0,
                reserved_host_memory_mb=512,
                availability_zone="az1",
            )
        ]
    )
    InventorySync(LibvirtInventory({"src": SRC, "dst": DST}, records), records).sync()
    src = records.get_host("src")
    assert (src.vcpus, src.memory_mb) == (4, 8192)  # libvirt's
    assert (src.state, src.disabled_reason) == (HostState.MAINTENANCE, "firmware")  # ours
    assert (src.cpu_allocation_ratio, src.reserved_host_memory_mb) == (4.0, 512)
    assert src.availability_zone == "az1"
    assert records.get_host("dst").state == HostState.ENABLED


def test_a_state_set_while_libvirt_is_being_read_is_kept() -> None:
    records = MemoryRepositories()
    records.upsert_hosts([Host("src", vcpus=1, memory_mb=1)])

    def slow_connect(uri: str) -> Any:
        # the applier puts the host in maintenance while the inventory reads it
        records.upsert_hosts([Host("src", vcpus=1, memory_mb=1, state=HostState.MAINTENANCE)])
        return libvirt.open(uri)

    inventory = LibvirtInventory({"src": SRC}, records, connect=slow_connect)
    [src] = inventory.list_hosts()
    assert (src.state, src.vcpus) == (HostState.MAINTENANCE, 4)
    inventory.close()


def test_a_state_set_between_the_read_and_the_write_is_kept() -> None:
    """The window the read above leaves: the sync writes only libvirt's fields."""
    records = MemoryRepositories()
    records.upsert_hosts([Host("src", vcpus=1, memory_mb=1)])
    inventory = LibvirtInventory({"src": SRC}, records)

    class ApplierMeanwhile:
        host_fields = inventory.host_fields

        def list_hosts(self) -> list[Host]:
            hosts = inventory.list_hosts()
            records.upsert_hosts([Host("src", vcpus=1, memory_mb=1, state=HostState.MAINTENANCE)])
            return hosts

        def list_instances(self) -> list[Instance]:
            return inventory.list_instances()

    InventorySync(ApplierMeanwhile(), records).sync()
    src = records.get_host("src")
    assert (src.state, src.vcpus) == (HostState.MAINTENANCE, 4)
    inventory.close()


def test_a_domain_defined_on_two_hosts_counts_where_it_runs(tmp_path: Path) -> None:
    (tmp_path / "twice.xml").write_text(TWICE)
    hosts = {"copy": f"test://{tmp_path / 'twice.xml'}", "src": SRC}
    instances = LibvirtInventory(hosts, MemoryRepositories()).list_instances()
    [vm] = [i for i in instances if i.name == "vm-a"]
    assert (vm.host, vm.state) == ("src", InstanceState.ACTIVE)


def test_an_unreachable_host_is_skipped_and_keeps_its_recorded_instances() -> None:
    records = MemoryRepositories()
    kept = Instance("old-vm", "gone", Flavor("m1.small", 1, 512))
    records.upsert_hosts([Host("gone", vcpus=8, memory_mb=1024)])
    records.upsert_instances([kept])
    inventory = LibvirtInventory({"src": SRC, "gone": UNREACHABLE}, records, timeout=10)
    sync = InventorySync(inventory, records)

    assert sync.sync()  # one host down is not a failed refresh
    assert [h.name for h in inventory.list_hosts()] == ["src"]
    assert {i.name for i in records.list_instances()} == {"vm-a", "old-vm"}
    assert records.get_host("gone").vcpus == 8  # as last recorded
    errors = inventory.drain_errors()
    assert errors and all("gone" in e and UNREACHABLE in e for e in errors)
    assert inventory.failures["gone"] == 2
    assert inventory.drain_errors() == []


def test_a_host_that_does_not_answer_is_bounded_by_the_timeout() -> None:
    release = threading.Event()

    def hanging(uri: str) -> Any:
        release.wait(30)
        return libvirt.open(uri)

    inventory = LibvirtInventory({"slow": SRC}, MemoryRepositories(), timeout=0.2, connect=hanging)
    try:
        assert inventory.list_hosts() == []
        [error] = inventory.drain_errors()
        assert "no answer within 0.2 s" in error
    finally:
        release.set()
        inventory.close()


def test_a_library_error_becomes_a_driver_error_naming_the_host() -> None:
    def refusing(uri: str) -> Any:
        raise RuntimeError("permission denied")

    inventory = LibvirtInventory({"h1": SRC}, MemoryRepositories(), connect=refusing)
    assert inventory.list_hosts() == []
    [error] = inventory.drain_errors()
    assert error.startswith(f"inventory of h1 ({SRC}): permission denied")
    # the same translation is what a caller sees from one host's read
    with pytest.raises(DriverError, match="h1"):
        inventory._read("h1")


def test_an_inventory_needs_hosts() -> None:
    with pytest.raises(ValueError, match="at least one host"):
        LibvirtInventory({}, MemoryRepositories())
