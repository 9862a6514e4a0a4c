"""SimCloud's raw counters, CPU sharing, energy and Nova views under manual time."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendrs.cloud.sim.cloud import SimCloud
from opendrs.cloud.sim.placement import spread
from opendrs.cloud.sim.power import PowerModel
from opendrs.cloud.sim.sharing import share_cpu
from opendrs.cloud.sim.specs import HostSpec, IoProfile, VmSpec
from opendrs.cloud.sim.traces import Trace
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import DriverError, InvalidInput
from opendrs.domain.host import HostState

POWER = PowerModel([93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133, 135])


def trace(percents: list[int], name: str = "t") -> Trace:
    return Trace(name, np.array([*percents, percents[-1]], dtype=np.float64) / 100.0)


def host(name: str, cores: int = 4, mips: float = 1000.0, **kw: float) -> HostSpec:
    return HostSpec(
        name=name,
        cores=cores,
        mips_per_core=mips,
        memory_mb=int(kw.pop("memory_mb", 16384)),
        disk_gb=500,
        bandwidth_mbps=1000.0,
        power=POWER,
        **kw,
    )


def vm(
    name: str, percents: list[int], vcpus: int = 1, mips: float = 1000.0, **kw: object
) -> VmSpec:
    return VmSpec(
        name=name,
        vcpus=vcpus,
        mips_per_vcpu=mips,
        memory_mb=int(kw.pop("memory_mb", 2048)),  # type: ignore[call-overload]
        disk_gb=20,
        trace=trace(percents, name),
        **kw,  # type: ignore[arg-type]
    )


def cpu_util_between(
    cloud: SimCloud, clock: ManualClock, host_name: str, t0: float, t1: float
) -> dict[str, float]:
    clock.set(t0)
    before = {c.instance: c for c in cloud.instance_counters(host_name)}
    clock.set(t1)
    after = cloud.instance_counters(host_name)
    return {
        c.instance: (c.cpu_time_ns - before[c.instance].cpu_time_ns)
        / ((t1 - t0) * c.vcpus * 1e9)
        * 100
        for c in after
    }


def trace_mean(t: Trace, t0: float, t1: float) -> float:
    points = np.linspace(t0, t1, 20001)
    return float(np.mean([t.at(p) for p in points]))


@pytest.mark.parametrize(("t0", "t1"), [(0, 300), (300, 900), (100, 700), (50, 1150)])
def test_cpu_util_from_counters_matches_trace_without_contention(t0: float, t1: float) -> None:
    clock = ManualClock()
    spec = vm("a", [20, 60, 40, 90])
    cloud = SimCloud([host("h")], [spec], {"a": "h"}, clock)
    util = cpu_util_between(cloud, clock, "h", t0, t1)
    assert util["a"] == pytest.approx(100 * trace_mean(spec.trace, t0, t1), rel=1e-4)


def test_trace_is_a_fraction_of_one_vcpu_and_vcpus_cap_demand() -> None:
    clock = ManualClock()
    cloud = SimCloud(
        [host("h", cores=8)],
        [vm("two", [50, 50], vcpus=2), vm("fast", [80, 80], mips=2000.0)],
        {"two": "h", "fast": "h"},
        clock,
    )
    util = cpu_util_between(cloud, clock, "h", 0, 300)
    assert util["two"] == pytest.approx(25.0)  # 0.5 of one vCPU's worth over 2 vCPUs
    assert util["fast"] == pytest.approx(100.0)  # 1.6 cores wanted, 1 vCPU


def test_contention_scales_every_vm_down_proportionally() -> None:
    clock = ManualClock()
    vms = [vm("a", [100, 100]), vm("b", [50, 50]), vm("c", [100, 100])]
    cloud = SimCloud([host("h", cores=2)], vms, dict.fromkeys("abc", "h"), clock)
    util = cpu_util_between(cloud, clock, "h", 0, 300)
    # demand 2.5 cores on 2: everyone gets 80% of what it asks
    assert util == pytest.approx({"a": 80.0, "b": 40.0, "c": 80.0})
    assert cloud.host_demand("h") == pytest.approx(1.25)
    assert cloud.host_utilisation("h") == 1.0
    assert cloud.overloaded_hosts(0.8) == ["h"]
    assert cloud.sla_violation == pytest.approx(0.2)
    busy = cloud.host_counters("h").cpu_time_ns
    assert busy == pytest.approx(2 * 300 * 1e9, rel=1e-9)


def test_share_cpu_gives_what_fits_and_scales_what_does_not() -> None:
    shares = share_cpu(
        np.array([1.0, 1.0, 3.0]),
        np.array([0, 0, 1], dtype=np.int64),
        np.array([0.0, 1.0]),
        np.array([4.0, 2.0]),
    )
    assert shares.granted == pytest.approx([1.0, 1.0, 1.5])
    assert shares.load == pytest.approx([2.0, 4.0])
    assert shares.busy == pytest.approx([2.0, 2.0])


def test_energy_integrates_power_and_empty_hosts_draw_nothing() -> None:
    clock = ManualClock()
    cloud = SimCloud([host("h", cores=1), host("empty")], [vm("a", [50, 50])], {"a": "h"}, clock)
    clock.set(300)
    assert cloud.host_energy_joules("h") == pytest.approx(116 * 300)
    assert cloud.host_energy_joules("empty") == 0.0
    assert cloud.energy_joules == pytest.approx(116 * 300)
    assert cloud.power_watts() == pytest.approx(116)

    clock2 = ManualClock()
    always_on = SimCloud(
        [host("h", cores=1), host("empty")],
        [vm("a", [50, 50])],
        {"a": "h"},
        clock2,
        empty_hosts_draw_power=True,
    )
    clock2.set(300)
    assert always_on.host_energy_joules("empty") == pytest.approx(93.7 * 300)


def test_memory_and_io_counters() -> None:
    clock = ManualClock()
    io = IoProfile(disk_read_bps=1000.0, disk_write_bps=500.0, net_rx_bps=2000.0, net_tx_bps=100.0)
    cloud = SimCloud(
        [host("h", memory_mb=8192)],
        [vm("busy", [100, 100], io=io, memory_used_fraction=0.5), vm("idle", [0, 0], io=io)],
        {"busy": "h", "idle": "h"},
        clock,
    )
    clock.set(100)
    counters = {c.instance: c for c in cloud.instance_counters("h")}
    busy, idle = counters["busy"], counters["idle"]
    assert busy.memory_mb == 2048
    assert busy.memory_used_mb == pytest.approx(1024)
    assert busy.disks["vda"].read == 100_000  # full rate at full load
    assert busy.interfaces[next(iter(busy.interfaces))].read == 200_000
    assert idle.disks["vda"].read == 5_000  # 5% of the rate when idle
    assert idle.disks["vda"].write < busy.disks["vda"].write
    host_counters = cloud.host_counters("h")
    assert host_counters.memory_free_mb == pytest.approx(8192 - 1024 - 1024)
    assert host_counters.time == 100


def test_counters_never_decrease_without_migration() -> None:
    clock = ManualClock()
    cloud = SimCloud(
        [host("h", cores=1)],
        [vm("a", [10, 90, 0, 70]), vm("b", [99, 99, 99, 99])],
        {"a": "h", "b": "h"},
        clock,
    )
    last = {c.instance: c.cpu_time_ns for c in cloud.instance_counters("h")}
    for t in range(37, 2000, 37):
        clock.set(t)
        for c in cloud.instance_counters("h"):
            assert c.cpu_time_ns >= last[c.instance]
            last[c.instance] = c.cpu_time_ns


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=0.5, max_value=700.0), min_size=1, max_size=12))
def test_querying_often_or_once_gives_the_same_counters(steps: list[float]) -> None:
    def build(clock: ManualClock) -> SimCloud:
        return SimCloud(
            [host("h")],
            [vm("a", [20, 60, 40, 90, 5]), vm("b", [70, 10, 30, 30, 60], vcpus=2)],
            {"a": "h", "b": "h"},
            clock,
            wrap=True,
        )

    often_clock, once_clock = ManualClock(), ManualClock()
    often, once = build(often_clock), build(once_clock)
    for step in steps:
        often_clock.advance(step)
        often.instance_counters("h")
    once_clock.set(often_clock.now())
    a = [c.cpu_time_ns for c in often.instance_counters("h")]
    b = [c.cpu_time_ns for c in once.instance_counters("h")]
    assert a == pytest.approx(b, rel=1e-9, abs=2)
    assert often.energy_joules == pytest.approx(once.energy_joules, rel=1e-9)


def test_nova_fields_of_hosts() -> None:
    clock = ManualClock()
    cloud = SimCloud(
        [host("h1", cpu_allocation_ratio=4.0, ram_allocation_ratio=1.5), host("h2")],
        [vm("a", [1, 1], vcpus=2), vm("b", [1, 1], memory_mb=4096)],
        {"a": "h1", "b": "h1"},
        clock,
    )
    hosts = {h.name: h for h in cloud.list_hosts()}
    h1 = hosts["h1"]
    assert (h1.vcpus, h1.vcpus_used, h1.memory_mb_used, h1.local_gb_used) == (4, 3, 6144, 40)
    assert (h1.running_vms, h1.free_ram_mb, h1.disk_available_least) == (2, 16384 - 6144, 460)
    assert (h1.cpu_allocation_ratio, h1.ram_allocation_ratio) == (4.0, 1.5)
    assert h1.state == HostState.ENABLED
    assert hosts["h2"].running_vms == 0
    instances = {i.name: i for i in cloud.list_instances()}
    assert instances["a"].host == "h1"
    assert instances["a"].vcpus == 2
    assert instances["a"].metadata["trace"] == "a"


def test_host_states() -> None:
    clock = ManualClock()
    cloud = SimCloud([host("h1"), host("h2")], [vm("a", [1, 1])], {"a": "h1"}, clock)
    with pytest.raises(DriverError, match="still holds 1"):
        cloud.set_host_state("h1", HostState.OFF)
    cloud.set_host_state("h2", HostState.OFF, "saving power")
    with pytest.raises(DriverError, match="off"):
        cloud.host_counters("h2")
    h2 = next(h for h in cloud.list_hosts() if h.name == "h2")
    assert (h2.state, h2.disabled_reason) == (HostState.OFF, "saving power")
    cloud.set_host_state("h2", HostState.ENABLED)
    assert cloud.host_counters("h2").cores == 4
    with pytest.raises(DriverError, match="unknown host"):
        cloud.set_host_state("nope", HostState.DISABLED)


def test_spread_is_valid_deterministic_and_spreads() -> None:
    hosts = [host(f"h{i}", cores=2, cpu_allocation_ratio=2.0) for i in range(4)]
    vms = [vm(f"v{i}", [1, 1], vcpus=1 + i % 3) for i in range(8)]
    placement = spread(hosts, vms, seed=7)
    assert placement == spread(hosts, vms, seed=7)
    assert set(placement) == {v.name for v in vms}
    for h in hosts:
        mine = [v for v in vms if placement[v.name] == h.name]
        assert mine, f"{h.name} got nothing"
        assert sum(v.vcpus for v in mine) <= h.vcpu_capacity
        assert sum(v.memory_mb for v in mine) <= h.memory_capacity_mb


def test_spread_fails_clearly_when_nothing_fits() -> None:
    with pytest.raises(InvalidInput, match="fits on no host"):
        spread([host("h", cores=1)], [vm("big", [1, 1], vcpus=2)], seed=1)


def test_bad_placement_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown host"):
        SimCloud([host("h")], [vm("a", [1, 1])], {"a": "elsewhere"}, ManualClock())
    with pytest.raises(InvalidInput, match="no host"):
        SimCloud([host("h")], [vm("a", [1, 1])], {}, ManualClock())
