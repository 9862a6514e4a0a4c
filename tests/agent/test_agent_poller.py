"""The agent's poll: Ceilometer samples from a simulated host, and isolation of
whatever fails to read."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from opendrs.agent.pipeline import PluginPipeline
from opendrs.agent.poller import Agent
from opendrs.cloud.sim.cloud import SimCloud
from opendrs.cloud.sim.power import PowerModel
from opendrs.cloud.sim.specs import HostSpec, IoProfile, VmSpec
from opendrs.cloud.sim.traces import Trace
from opendrs.domain.clock import ManualClock
from opendrs.domain.counters import HostCounters, InstanceCounters
from opendrs.domain.errors import DriverError
from opendrs.domain.sample import EntityKind, Sample, SampleType

POWER = PowerModel([100.0 + i for i in range(11)])
IO = IoProfile(disk_read_bps=1000.0, disk_write_bps=100.0, net_rx_bps=500.0, net_tx_bps=50.0)


def sim(clock: ManualClock) -> SimCloud:
    def vm(name: str, percents: list[int], vcpus: int = 1) -> VmSpec:
        values = np.array([*percents, percents[-1]], dtype=np.float64) / 100.0
        return VmSpec(name, vcpus, 1000.0, 2048, 20, Trace(name, values), 0.5, IO)

    hosts = [HostSpec(n, 4, 1000.0, 8192, 100, 1000.0, POWER) for n in ("h1", "h2")]
    vms = [vm("a", [40, 40, 40]), vm("b", [20, 60, 60], vcpus=2)]
    return SimCloud(hosts, vms, {"a": "h1", "b": "h1"}, clock)


def by_meter(samples: tuple[Sample, ...], entity: str) -> dict[str, list[Sample]]:
    found: dict[str, list[Sample]] = {}
    for s in samples:
        if s.entity == entity:
            found.setdefault(s.meter, []).append(s)
    return found


def test_samples_are_ceilometer_named_typed_and_rated() -> None:
    clock = ManualClock()
    agent = Agent("h1", sim(clock), PluginPipeline([]), clock)
    first = agent.poll_once()
    meters = by_meter(first.samples, "a")
    assert "cpu_util" not in meters  # a rate needs two observations
    assert "disk.device.read.bytes.rate" not in meters
    assert "compute.node.cpu.percent" not in by_meter(first.samples, "h1")

    clock.advance(300)
    second = agent.poll_once()
    a = by_meter(second.samples, "a")
    b = by_meter(second.samples, "b")
    assert a["cpu_util"][0].value == pytest.approx(40.0)
    assert b["cpu_util"][0].value == pytest.approx(20.0)  # (20→60 averages 40) of 1 vCPU, over 2
    expected = {
        "cpu": ("ns", SampleType.CUMULATIVE),
        "cpu_util": ("%", SampleType.GAUGE),
        "vcpus": ("vcpu", SampleType.GAUGE),
        "memory": ("MB", SampleType.GAUGE),
        "memory.usage": ("MB", SampleType.GAUGE),
        "disk.device.read.bytes": ("B", SampleType.CUMULATIVE),
        "disk.device.write.bytes": ("B", SampleType.CUMULATIVE),
        "disk.device.read.bytes.rate": ("B/s", SampleType.GAUGE),
        "disk.device.write.bytes.rate": ("B/s", SampleType.GAUGE),
        "network.incoming.bytes": ("B", SampleType.CUMULATIVE),
        "network.outgoing.bytes": ("B", SampleType.CUMULATIVE),
        "network.incoming.bytes.rate": ("B/s", SampleType.GAUGE),
        "network.outgoing.bytes.rate": ("B/s", SampleType.GAUGE),
    }
    assert set(a) == set(expected)
    for meter, (unit, kind) in expected.items():
        sample = a[meter][0]
        assert (sample.unit, sample.type) == (unit, kind), meter
        assert (sample.kind, sample.host, sample.time) == (EntityKind.INSTANCE, "h1", 300.0)
    assert a["disk.device.read.bytes"][0].labels == {"device": "vda"}
    assert a["memory.usage"][0].value == pytest.approx(1024.0)
    # I/O at 40% load: 5% + 95%·0.4 of the full rate
    assert a["disk.device.read.bytes.rate"][0].value == pytest.approx(
        1000 * (0.05 + 0.95 * 0.4), rel=1e-3
    )
    assert "interface" in a["network.incoming.bytes.rate"][0].labels

    host = by_meter(second.samples, "h1")
    assert set(host) == {
        "compute.node.cpu.percent",
        "memory.free",
        "memory.used",
        "memory.free.percent",
    }
    assert host["compute.node.cpu.percent"][0].value == pytest.approx(100 * (0.4 + 0.4) / 4)
    assert host["memory.used"][0].value == pytest.approx(2048.0)
    assert host["memory.free.percent"][0].value == pytest.approx(75.0)
    assert all(s.kind == EntityKind.HOST and s.host == "h1" for s in host["memory.free"])
    assert second.errors == ()


class Broken:
    """Wraps a stats source; can fail the instance list, the host, or one instance."""

    def __init__(self, inner: SimCloud) -> None:
        self.inner = inner
        self.fail_list = False
        self.fail_host = False
        self.bad_instance: str | None = None

    def host_counters(self, host: str) -> HostCounters:
        if self.fail_host:
            raise DriverError("libvirt connection lost", transient=True)
        return self.inner.host_counters(host)

    def instance_counters(self, host: str) -> list[InstanceCounters]:
        if self.fail_list:
            raise DriverError("cannot list domains")
        found = self.inner.instance_counters(host)
        return [replace(c, vcpus=0) if c.instance == self.bad_instance else c for c in found]


def test_a_bad_instance_costs_only_its_own_samples() -> None:
    clock = ManualClock()
    stats = Broken(sim(clock))
    agent = Agent("h1", stats, PluginPipeline([]), clock)
    agent.poll_once()
    clock.advance(300)
    stats.bad_instance = "a"
    result = agent.poll_once()
    assert by_meter(result.samples, "a") == {}
    assert "cpu_util" in by_meter(result.samples, "b")
    assert "compute.node.cpu.percent" in by_meter(result.samples, "h1")
    assert len(result.errors) == 1
    assert "instance a" in result.errors[0]
    assert "vcpus" in result.errors[0]
    assert agent.failures["instance"] == 1


def test_failing_list_or_host_costs_only_that_part() -> None:
    clock = ManualClock()
    stats = Broken(sim(clock))
    agent = Agent("h1", stats, PluginPipeline([]), clock)
    stats.fail_list = True
    result = agent.poll_once()
    assert {s.entity for s in result.samples} == {"h1"}
    assert result.errors == ("instance list of h1: cannot list domains",)
    stats.fail_list, stats.fail_host = False, True
    result = agent.poll_once()
    assert {s.entity for s in result.samples} == {"a", "b"}
    assert agent.failures == {"instance_counters": 1, "host_counters": 1}


def test_migration_reset_and_departure_give_no_negative_rates() -> None:
    clock = ManualClock()
    cloud = sim(clock)
    source, destination = (Agent(h, cloud, PluginPipeline([]), clock) for h in ("h1", "h2"))
    source.poll_once()
    clock.advance(300)
    source.poll_once()
    cloud.start_migration("a", "h2")
    clock.advance(20)
    assert "a" in {s.entity for s in destination.poll_once().samples}
    cloud.start_migration("a", "h1")  # back again, with counters restarted from zero
    clock.advance(280)
    result = source.poll_once()
    a = by_meter(result.samples, "a")
    assert "cpu" in a
    assert "cpu_util" not in a  # a decrease is a reset: no point
    assert "disk.device.read.bytes.rate" not in a
    assert "cpu_util" in by_meter(result.samples, "b")
    assert source.rates.resets >= 1
    destination.poll_once()
    assert "a" not in destination.rates.entities()
    clock.advance(300)
    a = by_meter(source.poll_once().samples, "a")
    assert a["cpu_util"][0].value == pytest.approx(40.0)
    assert min(s.value for group in a.values() for s in group) >= 0


def test_run_polls_until_told_to_stop() -> None:
    clock = ManualClock()
    agent = Agent("h1", sim(clock), PluginPipeline([]), clock)
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        clock.advance(seconds)
        return len(waits) == 3

    agent.run(60.0, wait)
    assert agent.polls == 3
    assert waits == [60.0, 60.0, 60.0]
