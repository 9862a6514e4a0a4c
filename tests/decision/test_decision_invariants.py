"""Properties over random clusters, for every built-in strategy: no capacity is
overbooked, hard group rules and zone pins hold, held instances stay, nothing
moves twice, consolidation overloads no host, and the planner accepts the plan."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opendrs.decision.host_view import HostView
from opendrs.decision.registry import StrategyRegistry
from opendrs.domain.action import PlanLimits
from opendrs.domain.cluster import Cluster
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Flavor, GroupPolicy, Instance, InstanceState, ServerGroup
from opendrs.domain.solution import Solution
from opendrs.planner import build_plan

ZONES = ("az1", "az2")
POLICIES = (GroupPolicy.AFFINITY, GroupPolicy.ANTI_AFFINITY, GroupPolicy.SOFT_ANTI_AFFINITY)


@st.composite
def clusters(draw: st.DrawFn) -> Cluster:
    count = draw(st.integers(2, 6))
    hosts: list[Host] = []
    for n in range(count):
        hosts.append(
            Host(
                name=f"h{n}",
                vcpus=draw(st.sampled_from([4, 8, 16])),
                memory_mb=draw(st.sampled_from([8192, 16384])),
                local_gb=200,
                cpu_allocation_ratio=draw(st.sampled_from([1.0, 2.0])),
                reserved_host_memory_mb=draw(st.sampled_from([0, 1024])),
                availability_zone=draw(st.sampled_from(ZONES)),
                state=HostState.ENABLED if n < 2 else draw(st.sampled_from(list(HostState))),
            )
        )
    groups = [ServerGroup(f"g{n}", draw(st.sampled_from(POLICIES))) for n in range(2)]
    room = {
        h.name: [HostView.of(h, []).vcpu_capacity, HostView.of(h, []).memory_capacity_mb, 200.0]
        for h in hosts
    }
    instances: list[Instance] = []
    members: dict[tuple[str, str], int] = {}
    for n in range(draw(st.integers(0, 14))):
        host = draw(st.sampled_from(hosts))
        flavor = draw(
            st.sampled_from(
                [Flavor("s", 1, 1024, 10), Flavor("m", 2, 2048, 20), Flavor("l", 4, 4096, 40)]
            )
        )
        r = room[host.name]
        if r[0] < flavor.vcpus or r[1] < flavor.memory_mb or r[2] < flavor.disk_gb:
            continue
        group = draw(st.sampled_from(["", "g0", "g1"]))
        policy = next((g.policy for g in groups if g.name == group), None)
        if policy == GroupPolicy.ANTI_AFFINITY and members.get((group, host.name)):
            group = ""
        if policy == GroupPolicy.AFFINITY:
            placed = [h for (g, h) in members if g == group]
            if placed and placed[0] != host.name:
                group = ""
        r[0] -= flavor.vcpus
        r[1] -= flavor.memory_mb
        r[2] -= flavor.disk_gb
        if group:
            members[(group, host.name)] = members.get((group, host.name), 0) + 1
        metadata = {}
        if draw(st.integers(0, 9)) == 0:
            metadata["never_migrate"] = "true"
        if draw(st.integers(0, 4)) == 0:
            metadata["availability_zone"] = host.availability_zone
        instances.append(
            Instance(
                name=f"v{n}",
                host=host.name,
                flavor=flavor,
                state=draw(
                    st.sampled_from(
                        [InstanceState.ACTIVE, InstanceState.ACTIVE, InstanceState.STOPPED]
                    )
                ),
                groups=(group,) if group else (),
                metadata=metadata,
                metrics={"cpu_util": draw(st.floats(0, 100))},
            )
        )
    return Cluster.of(hosts, instances, groups)


CASES = [
    ("server_consolidation", "host_packing", {"exact": False}),
    ("server_consolidation", "host_packing", {"exact": True, "exact_time_limit_s": 0.5}),
    ("server_consolidation", "host_packing", {"exact": False, "soft_rules_may_bend": False}),
    ("workload_balancing", "workload_balance", {}),
    ("workload_balancing", "workload_balance", {"soft_rules_may_bend": False}),
    ("workload_balancing", "workload_balance", {"metric": "ram"}),
    ("overload_relief", "overload_relief", {"threshold": 50, "target": 40}),
    ("host_maintenance", "host_maintenance", {"maintenance_node": "h0"}),
    ("host_maintenance", "host_maintenance", {"maintenance_node": "h0", "backup_node": "h1"}),
]

REGISTRY = StrategyRegistry.discover()


def check(cluster: Cluster, solution: Solution) -> None:
    moved = [m.instance for m in solution.moves]
    assert len(moved) == len(set(moved)), "an instance moves twice"
    final_state = {h: cluster.hosts[h].state for h in cluster.hosts}
    for change in solution.host_changes:
        final_state[change.host] = change.state
    final = cluster
    for m in solution.moves:
        instance = cluster.instances[m.instance]
        assert m.source == instance.host
        assert instance.movable, f"{m.instance} is never_migrate"
        assert final_state[m.destination] == HostState.ENABLED
        zone = instance.metadata.get("availability_zone")
        if zone:
            assert cluster.hosts[m.destination].availability_zone == zone
        final = final.move(m.instance, m.destination)
    for host in {m.destination for m in solution.moves}:
        view = HostView.of(final.hosts[host], final.instances_on(host))
        assert view.free_vcpus >= -1e-9 and view.free_memory_mb >= -1e-9
        assert view.free_disk_gb >= -1e-9
    for name, group in cluster.groups.items():
        before = {i.host for i in cluster.instances.values() if name in i.groups}
        after = [i.host for i in final.instances.values() if name in i.groups]
        if group.policy == GroupPolicy.ANTI_AFFINITY:
            assert len(after) == len(set(after)), f"anti-affinity {name} broken"
        if group.policy == GroupPolicy.AFFINITY and len(before) == 1:
            assert len(set(after)) <= 1, f"affinity {name} split"
    build_plan(solution, cluster, PlanLimits(), "audit", 0.0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster=clusters(), case=st.sampled_from(CASES))
def test_strategies_never_break_hard_rules_or_capacity(
    cluster: Cluster, case: tuple[str, str, dict[str, object]]
) -> None:
    goal, strategy, parameters = case
    solution = REGISTRY.create(goal, strategy, parameters).execute(cluster)
    check(cluster, solution)
    assert solution.explanations, "every audit explains itself"
    if parameters.get("soft_rules_may_bend") is False:
        final = cluster
        for m in solution.moves:
            final = final.move(m.instance, m.destination)
        for name, group in cluster.groups.items():
            if group.policy != GroupPolicy.SOFT_ANTI_AFFINITY:
                continue
            before = [i.host for i in cluster.instances.values() if name in i.groups]
            after = [i.host for i in final.instances.values() if name in i.groups]
            if len(before) == len(set(before)):
                assert len(after) == len(set(after)), f"soft anti-affinity {name} bent"


@settings(max_examples=60, deadline=None)
@given(cluster=clusters(), ceiling=st.sampled_from([60.0, 80.0, 95.0]))
def test_consolidation_never_overloads(cluster: Cluster, ceiling: float) -> None:
    solution = REGISTRY.create(
        "server_consolidation", "host_packing", {"max_cpu_percent": ceiling, "exact": False}
    ).execute(cluster)
    final = cluster
    for m in solution.moves:
        final = final.move(m.instance, m.destination)
    for host in {m.destination for m in solution.moves}:
        assert final.cpu_percent(host) <= ceiling + 1e-6
    released = {c.host for c in solution.host_changes}
    assert all(not final.instances_on(h) for h in released)
