"""Hypothesis strategies for small random clusters and a valid target placement
(every host within capacity before and after, anti-affinity kept), with the
solution that moves from one to the other."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import assume
from hypothesis import strategies as st

from opendrs.domain.cluster import Cluster
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Flavor, GroupPolicy, Instance, ServerGroup
from opendrs.domain.solution import HostChange, Move, Solution

GROUP = "spread"


@dataclass(frozen=True)
class Scenario:
    cluster: Cluster
    target: dict[str, str]
    solution: Solution


def _room(host: Host) -> list[float]:
    return [host.allocatable_vcpus, host.allocatable_memory_mb]


def _place(
    draw: st.DrawFn,
    instances: list[tuple[str, Flavor, bool]],
    hosts: list[Host],
    allowed: set[str],
) -> dict[str, str] | None:
    room = {h.name: _room(h) for h in hosts}
    spread_hosts: set[str] = set()
    placement: dict[str, str] = {}
    for name, flavor, spread in instances:
        fitting = [
            h.name
            for h in hosts
            if h.name in allowed
            and room[h.name][0] >= flavor.vcpus
            and room[h.name][1] >= flavor.memory_mb
            and not (spread and h.name in spread_hosts)
        ]
        if not fitting:
            return None
        chosen = draw(st.sampled_from(fitting))
        room[chosen][0] -= flavor.vcpus
        room[chosen][1] -= flavor.memory_mb
        if spread:
            spread_hosts.add(chosen)
        placement[name] = chosen
    return placement


@st.composite
def scenarios(
    draw: st.DrawFn, max_hosts: int = 4, max_instances: int = 7, host_changes: bool = True
) -> Scenario:
    n_hosts = draw(st.integers(2, max_hosts))
    hosts = [
        Host(
            name=f"h{i}",
            vcpus=draw(st.integers(2, 8)),
            memory_mb=draw(st.sampled_from([2048, 4096, 8192])),
            cpu_allocation_ratio=draw(st.sampled_from([1.0, 1.0, 1.5])),
            reserved_host_cpus=draw(st.sampled_from([0, 0, 1])),
        )
        for i in range(n_hosts)
    ]
    n_instances = draw(st.integers(1, max_instances))
    instances = [
        (
            f"vm{i}",
            Flavor("f", draw(st.integers(1, 3)), draw(st.sampled_from([512, 1024, 2048]))),
            draw(st.booleans()),
        )
        for i in range(n_instances)
    ]
    # Some hosts start powered off (and empty); they must be enabled to take VMs.
    off = set()
    if host_changes:
        off = {h.name for h in hosts[1:] if draw(st.booleans()) and draw(st.booleans())}
    initial = _place(draw, instances, hosts, {h.name for h in hosts} - off)
    target = _place(draw, instances, hosts, {h.name for h in hosts})
    assume(initial is not None and target is not None)
    assert initial is not None and target is not None
    hosts = [Host(**{**_fields(h), "state": HostState.OFF}) if h.name in off else h for h in hosts]
    cluster = Cluster.of(
        hosts,
        [
            Instance(name, initial[name], flavor, groups=(GROUP,) if spread else ())
            for name, flavor, spread in instances
        ],
        [ServerGroup(GROUP, GroupPolicy.ANTI_AFFINITY)],
    )
    moves = tuple(
        Move(name, initial[name], target[name], reason=f"test move of {name}")
        for name, _, _ in instances
        if initial[name] != target[name]
    )
    changes: list[HostChange] = []
    if host_changes:
        used_after = set(target.values())
        used_before = set(initial.values())
        for h in hosts:
            if h.name in off and h.name in used_after:
                changes.append(HostChange(h.name, HostState.ENABLED, "needed for the target"))
            elif h.name in used_before and h.name not in used_after and draw(st.booleans()):
                changes.append(HostChange(h.name, HostState.MAINTENANCE, "drain"))
                if draw(st.booleans()):
                    changes.append(HostChange(h.name, HostState.OFF, "empty"))
    return Scenario(
        cluster, target, Solution(moves=moves, host_changes=tuple(changes), efficacy={"x": 1.0})
    )


def _fields(host: Host) -> dict[str, object]:
    return {name: getattr(host, name) for name in Host.__dataclass_fields__}
