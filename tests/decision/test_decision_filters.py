"""Host filters: capacity with ratios and reservations, state, source, CPU headroom,
server groups; every rejection says why."""

from decision_builders import node, vm

from opendrs.decision.filters import (
    AllowedHostsFilter,
    CpuHeadroomFilter,
    DiskFilter,
    HostStateFilter,
    NotSourceFilter,
    PlacementRequest,
    RamFilter,
    ServerGroupFilter,
    VcpuFilter,
)
from opendrs.decision.host_view import HostView
from opendrs.domain.host import HostState
from opendrs.domain.instance import GroupPolicy

REQUEST = PlacementRequest(source="src")


def test_vcpu_capacity_uses_allocation_ratio_and_reserved_cpus() -> None:
    # (8 - 2) × 2.0 = 12 schedulable vCPUs, 10 used: 2 free.
    h = node("n", vcpus=8, cpu_allocation_ratio=2.0, reserved_host_cpus=2)
    view = HostView.of(h, [vm("a", "n", vcpus=6), vm("b", "n", vcpus=4)])
    assert view.free_vcpus == 2
    assert VcpuFilter().passes(view, vm("x", "src", vcpus=2), REQUEST) is None
    reason = VcpuFilter().passes(view, vm("x", "src", vcpus=3), REQUEST)
    assert reason is not None
    assert "needs 3" in reason and "2 free of 12" in reason and "ratio 2" in reason


def test_ram_capacity_uses_allocation_ratio_and_reserved_memory() -> None:
    # (8192 - 1024) × 1.5 = 10752 MB schedulable, 8192 used: 2560 free.
    h = node("n", memory_mb=8192, ram_allocation_ratio=1.5, reserved_host_memory_mb=1024)
    view = HostView.of(h, [vm("a", "n", memory_mb=8192)])
    assert RamFilter().passes(view, vm("x", "src", memory_mb=2560), REQUEST) is None
    reason = RamFilter().passes(view, vm("x", "src", memory_mb=2561), REQUEST)
    assert reason is not None and "needs 2561 MB" in reason and "2560 MB free" in reason


def test_reported_use_counts_when_larger_than_the_model() -> None:
    h = node("n", vcpus=8, vcpus_used=7)
    view = HostView.of(h, [vm("a", "n", vcpus=2)])
    assert view.vcpus_used == 7
    assert VcpuFilter().passes(view, vm("x", "src", vcpus=2), REQUEST) is not None


def test_disk_is_checked_only_for_local_disks() -> None:
    view = HostView.of(node("n"), [vm("a", "n", disk_gb=490)])
    assert DiskFilter().passes(view, vm("x", "src", disk_gb=0), REQUEST) is None
    reason = DiskFilter().passes(view, vm("x", "src", disk_gb=20), REQUEST)
    assert reason is not None and "needs 20 GB" in reason


def test_only_enabled_hosts_accept() -> None:
    instance = vm("x", "src")
    assert HostStateFilter().passes(HostView.of(node("n"), []), instance, REQUEST) is None
    for state in (HostState.DISABLED, HostState.MAINTENANCE, HostState.OFF):
        view = HostView.of(node("n", state=state, disabled_reason="fan broken"), [])
        reason = HostStateFilter().passes(view, instance, REQUEST)
        assert reason is not None and state.value in reason and "fan broken" in reason


def test_the_source_is_not_a_destination() -> None:
    instance = vm("x", "src")
    assert NotSourceFilter().passes(HostView.of(node("src"), []), instance, REQUEST) is not None
    assert NotSourceFilter().passes(HostView.of(node("dst"), []), instance, REQUEST) is None


def test_cpu_headroom_projects_the_measured_load() -> None:
    # 10 cores, 6 in use (60%); the VM adds 2 cores at 100% or 1 core at 50%.
    view = HostView.of(node("n", vcpus=10), [vm("a", "n", vcpus=6, cpu=100.0)])
    headroom = CpuHeadroomFilter(75.0)
    assert headroom.passes(view, vm("x", "src", vcpus=2, cpu=50.0), REQUEST) is None
    reason = headroom.passes(view, vm("x", "src", vcpus=2, cpu=100.0), REQUEST)
    assert reason is not None and "80.0%" in reason and "75%" in reason
    # Exactly at the limit is allowed.
    assert headroom.passes(view, vm("x", "src", vcpus=3, cpu=50.0), REQUEST) is None


def test_anti_affinity_keeps_members_apart() -> None:
    request = PlacementRequest(
        source="src", group_policies={"g": GroupPolicy.ANTI_AFFINITY}, group_sizes={"g": 2}
    )
    member = vm("x", "src", groups=("g",))
    crowded = HostView.of(node("n"), [vm("y", "n", groups=("g",))])
    assert ServerGroupFilter().passes(crowded, member, request) is not None
    assert ServerGroupFilter().passes(HostView.of(node("m"), []), member, request) is None


def test_affinity_member_stays_with_its_siblings() -> None:
    request = PlacementRequest(
        source="src", group_policies={"g": GroupPolicy.AFFINITY}, group_sizes={"g": 2}
    )
    member = vm("x", "src", groups=("g",))
    reason = ServerGroupFilter().passes(HostView.of(node("m"), []), member, request)
    assert reason is not None and "affinity group g" in reason
    alone = PlacementRequest(group_policies={"g": GroupPolicy.AFFINITY}, group_sizes={"g": 1})
    assert ServerGroupFilter().passes(HostView.of(node("m"), []), member, alone) is None


def test_allowed_hosts() -> None:
    allowed = AllowedHostsFilter(["a"])
    assert allowed.passes(HostView.of(node("a"), []), vm("x", "s"), REQUEST) is None
    assert allowed.passes(HostView.of(node("b"), []), vm("x", "s"), REQUEST) is not None


def test_host_view_moves_are_reversible() -> None:
    instance = vm("x", "n", vcpus=3, memory_mb=1000, cpu=40.0, groups=("g",))
    empty = HostView.of(node("n"), [])
    full = empty.with_instance(instance)
    assert (full.vcpus_used, full.memory_mb_used, full.disk_gb_used) == (3, 1000, 20)
    assert full.cpu_cores_used == 1.2 and full.group_members == {"g": 1}
    assert full.without_instance(instance) == empty
