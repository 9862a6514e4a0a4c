"""The libvirt driver for real, on libvirt's test driver: `test:///default` and a
custom node (tests/cloud/fixtures/node.xml) with several domains, disks, a
volume, interfaces and Nova metadata; vanishing, failing and hanging domains."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opendrs.agent.pipeline import PluginPipeline
from opendrs.agent.poller import Agent
from opendrs.cloud.libvirt import LibvirtStats
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import DriverError

NODE = Path(__file__).parent / "fixtures" / "node.xml"
NODE_URI = f"test://{NODE.resolve()}"


@pytest.fixture(scope="module")
def libvirt() -> Any:
    """The libvirt module (a test dependency, the `libvirt` extra)."""
    import libvirt as module

    return module


@pytest.fixture
def node(libvirt: Any) -> Iterator[Any]:
    """A private connection to the custom node (each open gets fresh state)."""
    conn = libvirt.open(NODE_URI)
    yield conn
    conn.close()


def test_default_test_driver_gives_host_and_domain_counters(libvirt: Any) -> None:
    clock = ManualClock(1000.0)
    stats = LibvirtStats("test:///default", clock=clock)
    host = stats.host_counters("hv1")
    assert (host.host, host.time, host.cores, host.memory_mb) == ("hv1", 1000.0, 16, 3072)
    assert 0 < host.memory_free_mb <= host.memory_mb
    assert host.cpu_time_ns > 0
    assert host.local_gb == 100
    [test] = stats.instance_counters("hv1")
    assert (test.instance, test.vcpus, test.memory_mb, test.time) == ("test", 2, 8192, 1000.0)
    assert test.cpu_time_ns > 0
    assert test.memory_used_mb == pytest.approx(1024.0)  # balloon: available - unused
    assert set(test.disks) == {"vda"}
    assert set(test.interfaces) == {"testnet0"}
    assert test.disks["vda"].read > 0 and test.disks["vda"].read_ops is not None
    assert test.interfaces["testnet0"].write_ops is not None
    assert stats.drain_errors() == []
    stats.close()


def test_custom_node_with_several_domains(libvirt: Any) -> None:
    stats = LibvirtStats(NODE_URI, clock=ManualClock(5.0))
    host = stats.host_counters("node")
    assert (host.cores, host.memory_mb) == (16, 65536)
    found = {c.instance: c for c in stats.instance_counters("node")}
    assert set(found) == {"web-1", "db-1", "idle-1"}  # off-1 is shut off: no stats
    web = found["web-1"]
    assert (web.vcpus, web.memory_mb, web.flavor) == (4, 8192, "m1.large")
    assert set(web.disks) == {"vda", "vdb"}  # the cdrom has no counters of interest
    assert set(web.volumes) == {"vdc"}  # the disk with a Cinder serial
    assert set(web.interfaces) == {"tap-web1a", "tap-web1b"}
    assert web.metadata["display_name"] == "web server"
    assert web.metadata["project_id"] == "p-1"
    assert float(web.metadata["qos.outbound_bps.tap-web1a"]) == pytest.approx(5e9)
    assert float(web.metadata["qos.inbound_bps.tap-web1a"]) == pytest.approx(10e9)
    assert "qos.outbound_bps.tap-web1b" not in web.metadata
    assert found["idle-1"].disks == {} and found["idle-1"].interfaces == {}
    assert found["db-1"].flavor == ""
    by_uuid = LibvirtStats(NODE_URI, instance_key="uuid")
    names = {c.instance: c.metadata["display_name"] for c in by_uuid.instance_counters("n")}
    assert names["11111111-0000-4000-8000-000000000002"] == "db-1"


def test_agent_on_libvirt_emits_ceilometer_meters(libvirt: Any) -> None:
    clock = ManualClock(100.0)
    agent = Agent("node", LibvirtStats(NODE_URI, clock=clock), PluginPipeline([]), clock)
    agent.poll_once()
    clock.advance(60)
    result = agent.poll_once()
    assert result.errors == ()
    web = {
        (s.meter, tuple(sorted(s.labels.items()))): s for s in result.samples if s.entity == "web-1"
    }
    meters = {meter for meter, _ in web}
    assert {
        "cpu",
        "cpu_util",
        "vcpus",
        "memory",
        "memory.usage",
        "disk.device.read.bytes",
        "disk.device.read.bytes.rate",
        "disk.device.write.requests",
        "network.incoming.bytes.rate",
        "network.outgoing.packets",
    } <= meters
    assert web[("disk.device.read.bytes", (("device", "vdc"), ("volume", "true")))].unit == "B"
    assert web[("network.incoming.packets", (("interface", "tap-web1a"),))].unit == "packet"
    assert all(s.value >= 0 for s in result.samples)
    assert 0 <= web[("cpu_util", ())].value <= 100


class _Proxy:
    """Delegates to a real libvirt object, with some methods replaced."""

    def __init__(self, real: Any, **replaced: Any) -> None:
        self._real = real
        self._replaced = replaced

    def __getattr__(self, name: str) -> Any:
        if name in self._replaced:
            return self._replaced[name]
        return getattr(self._real, name)


def test_a_domain_that_vanishes_mid_poll_costs_only_its_counters(node: Any) -> None:
    def list_then_remove(flags: int = 0) -> list[Any]:
        domains = node.listAllDomains(flags)
        db = node.lookupByName("db-1")
        db.destroy()
        db.undefine()  # listed, then gone before its stats are read
        return domains

    conn = _Proxy(node, listAllDomains=list_then_remove)
    stats = LibvirtStats(NODE_URI, connect=lambda uri: conn)
    assert {c.instance for c in stats.instance_counters("n")} == {"web-1", "idle-1"}
    assert stats.drain_errors() == ["domain db-1 disappeared during the poll"]
    assert stats.failures["domain_gone"] == 1
    assert stats.drain_errors() == []


def test_a_failing_domain_costs_only_its_counters_and_is_reported(node: Any, libvirt: Any) -> None:
    def broken_xml(flags: int = 0) -> str:
        raise libvirt.libvirtError("internal error: cannot parse the domain")

    def listing(flags: int = 0) -> list[Any]:
        return [
            _Proxy(d, XMLDesc=broken_xml) if d.name() == "web-1" else d
            for d in node.listAllDomains(flags)
        ]

    clock = ManualClock()
    stats = LibvirtStats(NODE_URI, connect=lambda uri: _Proxy(node, listAllDomains=listing))
    agent = Agent("n", stats, PluginPipeline([]), clock)
    result = agent.poll_once()
    assert {s.entity for s in result.samples} == {"db-1", "idle-1", "n"}
    assert len(result.errors) == 1
    assert "domain web-1" in result.errors[0] and "cannot parse" in result.errors[0]
    assert agent.failures["driver"] == 1


def test_a_hanging_call_is_bounded_by_the_timeout(node: Any) -> None:
    release = threading.Event()

    def hang() -> Any:
        release.wait(30)  # bounded so the thread ends even if the test fails
        raise RuntimeError("released")

    def listing(flags: int = 0) -> list[Any]:
        return [
            _Proxy(d, info=hang) if d.name() == "db-1" else d for d in node.listAllDomains(flags)
        ]

    stats = LibvirtStats(
        NODE_URI, timeout=0.3, connect=lambda uri: _Proxy(node, listAllDomains=listing)
    )
    try:
        assert {c.instance for c in stats.instance_counters("n")} == {"web-1", "idle-1"}
        [error] = stats.drain_errors()
        assert "db-1" in error and "no answer within 0.3 s" in error
        assert stats.failures["domain"] == 1
    finally:
        release.set()


def test_a_hanging_connection_call_raises_transient_and_reconnects(node: Any) -> None:
    release = threading.Event()
    opened: list[int] = []

    def hang() -> Any:
        release.wait(30)
        return node.getInfo()

    def connect(uri: str) -> Any:
        opened.append(1)
        return _Proxy(node, getInfo=hang) if len(opened) == 1 else node

    stats = LibvirtStats(NODE_URI, timeout=0.3, connect=connect)
    try:
        with pytest.raises(DriverError, match="no answer") as err:
            stats.host_counters("n")
        assert err.value.transient
        assert stats.host_counters("n").cores == 16  # a new connection
        assert len(opened) == 2
    finally:
        release.set()


def test_unreachable_uri_is_a_transient_driver_error(libvirt: Any) -> None:
    stats = LibvirtStats("test:///nonexistent/node.xml")
    with pytest.raises(DriverError, match="cannot connect") as err:
        stats.instance_counters("n")
    assert err.value.transient


def test_missing_libvirt_python_is_a_clear_driver_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "libvirt", None)  # import fails as if not installed
    with pytest.raises(DriverError, match="pip install libvirt-python"):
        LibvirtStats("test:///default").host_counters("h")


def test_nova_domains_are_named_by_their_server_id(libvirt: Any) -> None:
    """With `nova`, a domain Nova defined is named as the OpenStack inventory names
    its server (the uuid), any other domain by its name."""
    stats = LibvirtStats(NODE_URI, instance_key="nova")
    found = {c.instance: c for c in stats.instance_counters("node")}
    # web-1 carries <nova:instance> metadata; db-1 and idle-1 are plain domains.
    assert set(found) == {"11111111-0000-4000-8000-000000000001", "db-1", "idle-1"}
    assert found["11111111-0000-4000-8000-000000000001"].metadata["display_name"] == "web server"
    assert found["db-1"].metadata.get("display_name") is None
    stats.close()


def test_an_unknown_instance_key_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="one of name, uuid, nova, got 'id'"):
        LibvirtStats(NODE_URI, instance_key="id")
