"""Live migration in the simulated cloud: timing, double accounting, errors,
and the invariant that no VM is ever lost or duplicated."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendrs.cloud.sim.cloud import SimCloud
from opendrs.cloud.sim.power import PowerModel
from opendrs.cloud.sim.specs import HostSpec, VmSpec
from opendrs.cloud.sim.traces import Trace
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import DriverError
from opendrs.domain.host import HostState
from opendrs.domain.instance import InstanceState
from opendrs.domain.ports import OperationState

POWER = PowerModel([10.0 * i for i in range(11)])


def spec_host(name: str, cores: int = 4, memory_mb: int = 16384, bw: float = 1000.0) -> HostSpec:
    return HostSpec(name, cores, 1000.0, memory_mb, 500, bw, POWER)


def spec_vm(name: str, percent: int = 50, memory_mb: int = 2048, vcpus: int = 1) -> VmSpec:
    values = np.full(289, percent / 100.0)
    return VmSpec(name, vcpus, 1000.0, memory_mb, 20, Trace(name, values))


def two_hosts(clock: ManualClock, **vm: int) -> SimCloud:
    return SimCloud([spec_host("src"), spec_host("dst")], [spec_vm("a", **vm)], {"a": "src"}, clock)


def hosts_by_name(cloud: SimCloud) -> dict[str, object]:
    return {h.name: h for h in cloud.list_hosts()}


def test_migration_lasts_ram_over_bandwidth_and_counts_on_both_hosts() -> None:
    clock = ManualClock(1000.0)
    cloud = two_hosts(clock, memory_mb=2048)
    op = cloud.start_migration("a", "dst")
    duration = 2048 * 8 / 1000.0  # 16.384 s

    clock.advance(duration - 0.001)
    assert cloud.operation(op).state == OperationState.RUNNING
    assert cloud.locate("a") == "src"
    hosts = {h.name: h for h in cloud.list_hosts()}
    assert (hosts["src"].vcpus_used, hosts["src"].memory_mb_used) == (1, 2048)
    assert (hosts["dst"].vcpus_used, hosts["dst"].memory_mb_used) == (1, 2048)
    assert (hosts["src"].running_vms, hosts["dst"].running_vms) == (1, 0)
    assert hosts["src"].current_workload == hosts["dst"].current_workload == 1
    assert [i.state for i in cloud.list_instances()] == [InstanceState.MIGRATING]
    assert [c.instance for c in cloud.instance_counters("src")] == ["a"]
    assert cloud.instance_counters("dst") == []

    clock.advance(0.001)
    assert cloud.operation(op).state == OperationState.SUCCEEDED
    assert cloud.locate("a") == "dst"
    hosts = {h.name: h for h in cloud.list_hosts()}
    assert (hosts["src"].vcpus_used, hosts["dst"].vcpus_used) == (0, 1)
    assert (hosts["src"].running_vms, hosts["dst"].running_vms) == (0, 1)
    assert cloud.instance_counters("src") == []
    assert [c.instance for c in cloud.instance_counters("dst")] == ["a"]
    assert cloud.migrations_completed == 1
    assert [i.host for i in cloud.list_instances()] == ["dst"]


def test_duration_uses_the_slower_link() -> None:
    clock = ManualClock()
    cloud = SimCloud(
        [spec_host("src"), spec_host("dst", bw=100.0)],
        [spec_vm("a", memory_mb=1000)],
        {"a": "src"},
        clock,
    )
    op = cloud.start_migration("a", "dst")
    clock.advance(79.9)
    assert cloud.operation(op).state == OperationState.RUNNING
    clock.advance(0.1)
    assert cloud.operation(op).state == OperationState.SUCCEEDED


def test_counters_run_on_source_until_the_move_then_restart_on_destination() -> None:
    clock = ManualClock()
    cloud = two_hosts(clock, percent=50, memory_mb=1000)  # 8 s migration, half a core
    clock.set(100.0)
    cloud.start_migration("a", "dst")
    clock.set(108.0 + 10.0)
    counters = cloud.instance_counters("dst")[0]
    assert counters.cpu_time_ns == pytest.approx(0.5 * 10.0 * 1e9, rel=1e-9)
    # the source was busy with it until the move, the destination paid 10% during it
    assert cloud.host_counters("src").cpu_time_ns == pytest.approx(0.5 * 108 * 1e9, rel=1e-9)
    dst_busy = 0.1 * 0.5 * 8.0 + 0.5 * 10.0
    assert cloud.host_counters("dst").cpu_time_ns == pytest.approx(dst_busy * 1e9, rel=1e-9)


def test_completion_with_no_query_in_between_is_applied_at_its_time() -> None:
    clock = ManualClock()
    cloud = two_hosts(clock, memory_mb=1000)
    cloud.start_migration("a", "dst")
    clock.set(3600.0)
    assert cloud.locate("a") == "dst"
    assert cloud.host_energy_joules("src") == pytest.approx(12.5 * 8.0)  # 1/8 load: 12.5 W
    assert cloud.instance_counters("dst")[0].cpu_time_ns == pytest.approx(0.5 * 3592 * 1e9)


@pytest.mark.parametrize(
    ("instance", "destination", "prepare", "message"),
    [
        ("nope", "dst", None, "unknown instance"),
        ("a", "nope", None, "unknown destination"),
        ("a", "src", None, "already on src"),
        ("a", "dst", HostState.OFF, "is off"),
        ("a", "dst", HostState.MAINTENANCE, "is maintenance"),
    ],
)
def test_refused_migrations(
    instance: str, destination: str, prepare: HostState | None, message: str
) -> None:
    cloud = two_hosts(ManualClock())
    if prepare is not None:
        cloud.set_host_state("dst", prepare)
    with pytest.raises(DriverError, match=message):
        cloud.start_migration(instance, destination)
    assert cloud.locate("a") == "src"


def test_already_migrating_and_no_room_are_refused() -> None:
    clock = ManualClock()
    cloud = SimCloud(
        [spec_host("src"), spec_host("dst", memory_mb=3000), spec_host("third")],
        [spec_vm("a"), spec_vm("b")],
        {"a": "src", "b": "src"},
        clock,
    )
    op = cloud.start_migration("a", "dst")
    with pytest.raises(DriverError, match=f"already migrating \\(operation {op}\\)"):
        cloud.start_migration("a", "third")
    # the destination's RAM is already reserved for `a`
    with pytest.raises(DriverError, match="not enough RAM on dst"):
        cloud.start_migration("b", "dst")
    with pytest.raises(DriverError, match="still holds 1"):
        cloud.set_host_state("dst", HostState.OFF)
    with pytest.raises(DriverError, match="unknown operation"):
        cloud.operation("sim-migration-999")


def test_failed_operation_leaves_the_vm_on_its_source() -> None:
    clock = ManualClock()
    cloud = two_hosts(clock)
    op = cloud.start_migration("a", "dst")
    clock.advance(1.0)
    cloud.fail_operation(op, "link down")
    assert cloud.operation(op).state == OperationState.FAILED
    assert cloud.operation(op).message == "link down"
    clock.advance(100.0)
    assert cloud.locate("a") == "src"
    assert hosts_by_name(cloud)["dst"].vcpus_used == 0  # type: ignore[attr-defined]
    assert cloud.migrations_failed == 1


_hosts = st.sampled_from(["h0", "h1", "h2"])
_vms = st.sampled_from(["v0", "v1", "v2", "v3", "v4"])
_commands = st.lists(
    st.one_of(
        st.tuples(st.just("migrate"), _vms, _hosts),
        st.tuples(st.just("wait"), st.floats(min_value=0.1, max_value=40.0), st.none()),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(_commands)
def test_no_vm_is_ever_lost_or_duplicated(commands: list[tuple[str, object, object]]) -> None:
    clock = ManualClock()
    hosts = [spec_host(f"h{i}") for i in range(3)]
    vms = [spec_vm(f"v{i}", memory_mb=1024 * (1 + i % 3)) for i in range(5)]
    cloud = SimCloud(hosts, vms, {f"v{i}": f"h{i % 3}" for i in range(5)}, clock)
    for kind, a, b in commands:
        if kind == "migrate":
            with contextlib.suppress(DriverError):
                cloud.start_migration(str(a), str(b))
        else:
            clock.advance(float(a))  # type: ignore[arg-type]
        listed = [c.instance for h in hosts for c in cloud.instance_counters(h.name)]
        assert sorted(listed) == [v.name for v in vms]
        assert cloud.instance_count() == len(vms)
        assert sum(h.running_vms for h in cloud.list_hosts()) == len(vms)
        for v in vms:
            assert cloud.locate(v.name) in {h.name for h in hosts}
