"""Units of migration: instances that must move together because a (hard, or
held-hard soft) affinity group keeps them on one host, and how a unit is placed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from opendrs.decision.placement import Placement
from opendrs.domain.cluster import Cluster
from opendrs.domain.instance import GroupPolicy, Instance


def units_of(
    instances: Sequence[Instance], cluster: Cluster, *, soft_is_hard: bool = False
) -> list[tuple[Instance, ...]]:
    """`instances` (residents of one host) split into units: members sharing an
    affinity group stay in one unit; order within a unit is largest first."""
    binding = {GroupPolicy.AFFINITY}
    if soft_is_hard:
        binding.add(GroupPolicy.SOFT_AFFINITY)
    if not any(i.groups for i in instances):
        return [(i,) for i in sorted(instances, key=lambda i: i.name)]
    parent = {i.name: i.name for i in instances}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    first_in_group: dict[str, str] = {}
    for instance in instances:
        for g in instance.groups:
            group = cluster.groups.get(g)
            if group is None or group.policy not in binding:
                continue
            if g in first_in_group:
                parent[root(instance.name)] = root(first_in_group[g])
            else:
                first_in_group[g] = instance.name
    grouped: dict[str, list[Instance]] = {}
    for instance in instances:
        grouped.setdefault(root(instance.name), []).append(instance)
    units = [
        tuple(sorted(members, key=lambda i: (-i.memory_mb, -i.vcpus, i.name)))
        for members in grouped.values()
    ]
    units.sort(key=lambda u: u[0].name)
    return units


def place_unit(
    placement: Placement, unit: Sequence[Instance], source: str, host: str
) -> str | None:
    """Place every member of `unit` on `host` in the virtual view, or none of them:
    None on success, else the first refusal (the view is then unchanged)."""
    mark = placement.checkpoint()
    together = len(unit) > 1
    for instance in unit:
        refusal = placement.refusal(instance, host, source, with_group=together)
        if refusal is not None:
            placement.rollback(mark)
            name = f"{instance.name}: " if together else ""
            return f"{name}{refusal}"
        placement.place(instance, host)
    return None


def place_unit_best(
    placement: Placement, unit: Sequence[Instance], source: str, hosts: Iterable[str]
) -> tuple[str | None, dict[str, str]]:
    """The first of `hosts` that takes the whole unit (placed), and why the others
    tried before it did not."""
    refused: dict[str, str] = {}
    for host in hosts:
        refusal = place_unit(placement, unit, source, host)
        if refusal is None:
            return host, refused
        refused[host] = refusal
    return None, refused
