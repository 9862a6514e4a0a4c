"""The exact consolidation model: fewest hosts first, then least memory moved, as
a CP-SAT program (the optional `ortools` extra) over a small cluster, seeded with
the greedy answer and bounded in deterministic time so runs repeat exactly."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opendrs.decision.filters import AggregateFilter, AvailabilityZoneFilter, PlacementRequest
from opendrs.decision.host_view import HostView
from opendrs.decision.placement import Placement
from opendrs.decision.policy import hold_reason
from opendrs.decision.units import place_unit, units_of
from opendrs.domain.cluster import Cluster
from opendrs.domain.instance import GroupPolicy, Instance
from opendrs.domain.solution import Move

if TYPE_CHECKING:
    from opendrs.decision.strategies.host_packing import HostPackingParameters, Packing

CPU_SCALE = 1000  # measured cores in thousandths: the solver works in integers


@dataclass(frozen=True, slots=True)
class Refinement:
    packing: Packing | None
    note: str


def refine(
    cluster: Cluster,
    active: Sequence[str],
    greedy: Packing,
    parameters: HostPackingParameters,
    make_placement: Callable[[], Placement],
) -> Refinement:
    """A better packing than `greedy` when the model finds one that the filters
    confirm, else None; the note says what the exact step did."""
    try:
        from ortools.sat.python import cp_model
    except ImportError:
        return Refinement(None, "")
    hosts = list(active)
    names = set(hosts)
    members = sorted(
        (i for i in cluster.instances.values() if i.host in names), key=lambda i: i.name
    )
    if not members or len(members) > parameters.exact_max_instances:
        return Refinement(None, "")
    soft_is_hard = not parameters.soft_rules_may_bend
    anti = {GroupPolicy.ANTI_AFFINITY} | (
        {GroupPolicy.SOFT_ANTI_AFFINITY} if soft_is_hard else set()
    )
    aff = {GroupPolicy.AFFINITY} | ({GroupPolicy.SOFT_AFFINITY} if soft_is_hard else set())
    placement = make_placement()
    model = cp_model.CpModel()
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    zone, aggregate = AvailabilityZoneFilter(), AggregateFilter()
    for i, instance in enumerate(members):
        home = hosts.index(instance.host)
        fixed = bool(hold_reason(instance, parameters))
        for h, host in enumerate(hosts):
            if h != home:
                if fixed:
                    continue
                view = placement.view(host)
                request = PlacementRequest(source=instance.host)
                if zone.passes(view, instance, request) or aggregate.passes(
                    view, instance, request
                ):
                    continue
            x[(i, h)] = model.new_bool_var(f"x_{i}_{h}")
        model.add_exactly_one(x[(i, h)] for h in range(len(hosts)) if (i, h) in x)
    used = [model.new_bool_var(f"used_{h}") for h in range(len(hosts))]
    incoming = [model.new_bool_var(f"in_{h}") for h in range(len(hosts))]
    for h, host in enumerate(hosts):
        view = placement.view(host)
        residents = [i for i, m in enumerate(members) if m.host == host]
        outside = _outside_use(view, [members[i] for i in residents])
        on_h = [(i, x[(i, h)]) for i in range(len(members)) if (i, h) in x]
        limits = (
            ([m.vcpus for m in members], int(view.vcpu_capacity) - outside[0]),
            ([m.memory_mb for m in members], int(view.memory_capacity_mb) - outside[1]),
            ([m.disk_gb for m in members], int(view.disk_capacity_gb) - outside[2]),
        )
        for sizes, room in limits:
            model.add(sum(sizes[i] * var for i, var in on_h) <= max(room, 0))
        cores_cap = int(view.host.vcpus * parameters.max_cpu_percent / 100.0 * CPU_SCALE)
        model.add(
            sum(int(members[i].cpu_cores_used * CPU_SCALE) * var for i, var in on_h)
            <= max(cores_cap, int(view.cpu_cores_used * CPU_SCALE) + 1)
        )
        for i, var in on_h:
            model.add_implication(var, used[h])
            if members[i].host != host:
                model.add_implication(var, incoming[h])
        # A host that receives keeps its own instances: no swaps for the planner to untangle,
        # and no instance passes through a host another one leaves.
        for i in residents:
            model.add_implication(incoming[h], x[(i, h)])
        if view.cpu_cores_used > cores_cap / CPU_SCALE:
            for i, _ in on_h:
                if members[i].host != host:
                    model.add(x[(i, h)] == 0)
    groups: dict[str, list[int]] = {}
    for i, m in enumerate(members):
        for g in m.groups:
            groups.setdefault(g, []).append(i)
    for g, indices in groups.items():
        group = cluster.groups.get(g)
        if group is None:
            continue
        for h, host in enumerate(hosts):
            vars_h = [x[(i, h)] for i in indices if (i, h) in x]
            outside_members = sum(
                1 for o in cluster.instances.values() if g in o.groups and o.host == host
            ) - sum(1 for i in indices if members[i].host == host)
            if group.policy in anti:
                model.add(
                    sum(vars_h) + outside_members <= max(1, _count_home(members, indices, host))
                )
            if group.policy in aff and len(indices) > 1:
                first = indices[0]
                for other in indices[1:]:
                    a, b = x.get((first, h)), x.get((other, h))
                    if a is None and b is None:
                        continue
                    if a is None or b is None:
                        model.add((a if a is not None else b) == 0)
                    else:
                        model.add(a == b)
    big = sum(m.memory_mb for m in members) + 1
    cost = sum(m.memory_mb * (1 - x[(i, hosts.index(m.host))]) for i, m in enumerate(members))
    model.minimize(big * sum(used) + cost)
    moved_by_greedy = {mv.instance: mv.destination for mv in greedy.moves}
    for i, m in enumerate(members):
        target = hosts.index(moved_by_greedy.get(m.name, m.host))
        if (i, target) in x:
            for h in range(len(hosts)):
                if (i, h) in x:
                    model.add_hint(x[(i, h)], h == target)
    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = parameters.exact_time_limit_s
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 0
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Refinement(None, "exact model: no answer within its time budget; greedy kept")
    proved = "proved optimal" if status == cp_model.OPTIMAL else "best found within its budget"
    destination = {
        m.name: hosts[h]
        for i, m in enumerate(members)
        for h in range(len(hosts))
        if (i, h) in x and solver.value(x[(i, h)])
    }
    hosts_after = sum(1 for h in range(len(hosts)) if solver.value(used[h]))
    greedy_after = len(hosts) - len(greedy.emptied)
    exact_cost = sum(m.memory_mb for m in members if destination[m.name] != m.host)
    greedy_cost = greedy.memory_moved_mb(cluster)
    if (hosts_after, exact_cost) >= (greedy_after, greedy_cost):
        return Refinement(
            None,
            f"exact model ({proved}): {hosts_after} host(s), {exact_cost} MB moved; "
            f"the greedy answer ({greedy_after} host(s), {greedy_cost} MB) is as good",
        )
    checked = _confirm(cluster, placement, members, destination, soft_is_hard, proved, hosts_after)
    if isinstance(checked, str):
        return Refinement(None, f"exact model answer rejected by the filters: {checked}")
    from opendrs.decision.strategies.host_packing import Packing

    emptied = tuple(h for h in hosts if all(destination[m.name] != h for m in members))
    return Refinement(
        Packing(tuple(checked), emptied, {}),
        f"exact model ({proved}) improved the greedy answer from {greedy_after} host(s) and "
        f"{greedy_cost} MB to {hosts_after} host(s) and {exact_cost} MB",
    )


def _outside_use(view: HostView, residents: Sequence[Instance]) -> tuple[int, int, int]:
    """Use the host reports beyond the modelled instances (kept in every answer)."""
    return (
        max(0, view.vcpus_used - sum(m.vcpus for m in residents)),
        max(0, view.memory_mb_used - sum(m.memory_mb for m in residents)),
        max(0, view.disk_gb_used - sum(m.disk_gb for m in residents)),
    )


def _count_home(members: Sequence[Instance], indices: Sequence[int], host: str) -> int:
    return sum(1 for i in indices if members[i].host == host)


def _confirm(
    cluster: Cluster,
    placement: Placement,
    members: Sequence[Instance],
    destination: dict[str, str],
    soft_is_hard: bool,
    proved: str,
    hosts_after: int,
) -> list[Move] | str:
    """Replay the answer through the filters (the same ones the greedy uses)."""
    moves: list[Move] = []
    by_source: dict[str, list[Instance]] = {}
    for m in members:
        if destination[m.name] != m.host:
            by_source.setdefault(m.host, []).append(m)
    for source in sorted(by_source):
        for unit in units_of(by_source[source], cluster, soft_is_hard=soft_is_hard):
            target = destination[unit[0].name]
            refusal = place_unit(placement, unit, source, target)
            if refusal is not None:
                return f"{unit[0].name} → {target}: {refusal}"
            for instance in unit:
                moves.append(
                    Move(
                        instance.name,
                        source,
                        target,
                        live=instance.live,
                        reason=(
                            f"{instance.name} ({instance.vcpus} vCPU, {instance.memory_mb} MB) "
                            f"leaves {source} for {target}: the exact CP-SAT model ({proved}) "
                            f"packs the cluster on {hosts_after} host(s) moving the least "
                            "memory, and every filter accepts this destination"
                        ),
                    )
                )
    return moves
