"""Server consolidation on a snapshot: release as many hosts as the rules allow,
moving as little memory as possible. Hosts are emptied cheapest first, each
instance going to the tightest host every filter accepts (best fit); a host
is released only when all of it can leave. Small clusters may be refined by an
exact CP-SAT model (optional `ortools`) within a time budget."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from opendrs.decision.filters import CpuHeadroomFilter
from opendrs.decision.host_index import HostIndex
from opendrs.decision.parameters import parse_parameters
from opendrs.decision.placement import Placement
from opendrs.decision.policy import (
    AuditParameters,
    MoveBudget,
    hold_reason,
    placement_filters,
    rejections_text,
    resolve_scope,
)
from opendrs.decision.units import place_unit, units_of
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidInput
from opendrs.domain.host import HostState
from opendrs.domain.instance import Instance
from opendrs.domain.solution import HostChange, Move, Solution

NAME = "host_packing"
GOAL = "server_consolidation"
FAILURES_SHOWN = 5
RELEASE_STATES = {"off": HostState.OFF, "disabled": HostState.DISABLED}


@dataclass(frozen=True, slots=True)
class HostPackingParameters(AuditParameters):
    """max_cpu_percent: measured CPU a receiving host may reach. release_state:
    what a released host becomes (off, or disabled to only mark it). release_idle:
    release hosts that are already empty too. idle_power_w: the draw assumed for a
    released host that reports no `power` metric. scan_limit: hosts examined per
    instance. exact: refine with CP-SAT (when ortools is installed) clusters of at
    most exact_max_instances instances, within exact_time_limit_s seconds."""

    max_cpu_percent: float = 80.0
    release_state: str = "off"
    release_idle: bool = True
    idle_power_w: float = 150.0
    scan_limit: int = 64
    exact: bool = True
    exact_max_instances: int = 60
    exact_time_limit_s: float = 2.0

    def __post_init__(self) -> None:
        AuditParameters.__post_init__(self)
        if not 0 < self.max_cpu_percent <= 100:
            raise InvalidInput(
                f"must be above 0 and at most 100, got {self.max_cpu_percent:g}",
                field="parameters.max_cpu_percent",
            )
        if self.release_state not in RELEASE_STATES:
            raise InvalidInput(
                f"must be one of {', '.join(RELEASE_STATES)}, got {self.release_state!r}",
                field="parameters.release_state",
            )
        for name in ("scan_limit", "exact_max_instances"):
            if getattr(self, name) < 1:
                raise InvalidInput(
                    f"must be at least 1, got {getattr(self, name)}", field=f"parameters.{name}"
                )
        if self.idle_power_w < 0 or self.exact_time_limit_s <= 0:
            field = "idle_power_w" if self.idle_power_w < 0 else "exact_time_limit_s"
            raise InvalidInput("must be positive", field=f"parameters.{field}")


@dataclass(frozen=True, slots=True)
class Packing:
    """A consolidation answer before it becomes a Solution: moves with their
    reasons, the hosts emptied, and why other hosts stayed."""

    moves: tuple[Move, ...]
    emptied: tuple[str, ...]
    kept: Mapping[str, str]

    def memory_moved_mb(self, cluster: Cluster) -> int:
        return sum(cluster.instances[m.instance].memory_mb for m in self.moves)


class HostPacking:
    name: ClassVar[str] = NAME
    goal: ClassVar[str] = GOAL
    display_name: ClassVar[str] = "Release the most hosts at the least migration cost"
    parameters_type: ClassVar[type[HostPackingParameters]] = HostPackingParameters

    def __init__(self, parameters: HostPackingParameters | None = None) -> None:
        self.parameters = parameters or HostPackingParameters()

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> HostPacking:
        return cls(parse_parameters(HostPackingParameters, parameters, source=f"strategy {NAME}"))

    def execute(self, cluster: Cluster) -> Solution:
        p = self.parameters
        scope = resolve_scope(cluster, p.scope, f"strategy {NAME}")
        enabled = [h for h in scope if cluster.hosts[h].state == HostState.ENABLED]
        placement = self._placement(cluster, enabled)
        idle = [h for h in enabled if _idle(placement, h)]
        active = [h for h in enabled if h not in set(idle)]
        packing = self._greedy(cluster, placement, active)
        explanations: list[str] = []
        if p.exact and not p.max_migrations and not p.max_bytes_moved:
            from opendrs.decision.strategies import packing_model

            try:
                exact = packing_model.refine(
                    cluster, active, packing, p, lambda: self._placement(cluster, enabled)
                )
            except Exception as exc:
                # The refinement is optional: a solver failure leaves the greedy answer.
                exact = packing_model.Refinement(None, f"exact model failed ({exc!r}); greedy kept")
            if exact.packing is not None:
                packing = exact.packing
            if exact.note:
                explanations.append(exact.note)
        released_state = RELEASE_STATES[p.release_state]
        changes = [
            HostChange(
                h,
                released_state,
                f"{h} is released: every instance left it"
                + (" (powered off)" if released_state == HostState.OFF else " (marked disabled)"),
            )
            for h in packing.emptied
        ]
        if p.release_idle:
            changes.extend(
                HostChange(h, released_state, f"{h} is released: it runs no instance") for h in idle
            )
        bound = lower_bound_hosts(cluster, enabled, p.max_cpu_percent)
        remaining = len(active) - len(packing.emptied)
        released = [c.host for c in changes]
        memory = packing.memory_moved_mb(cluster)
        efficacy = {
            "compute_nodes_count": float(len(enabled)),
            "active_hosts_before": float(len(active)),
            "active_hosts_after": float(remaining),
            "released_compute_nodes_count": float(len(released)),
            "emptied_hosts_count": float(len(packing.emptied)),
            "released_nodes_ratio": 100.0 * len(released) / len(enabled) if enabled else 0.0,
            "lower_bound_hosts": float(bound),
            "instance_migrations_count": float(len(packing.moves)),
            "memory_moved_mb": float(memory),
            "bytes_moved": float(memory * 1024 * 1024),
            "predicted_power_saved_w": sum(_power(cluster, h, p.idle_power_w) for h in released),
        }
        explanations.insert(
            0,
            f"{len(active)} host(s) run instances; {remaining} remain after the plan "
            f"(lower bound {bound} from total demand / host capacity); "
            f"{len(packing.emptied)} emptied by {len(packing.moves)} migration(s) of "
            f"{memory} MB"
            + (
                f"; {len(idle)} idle host(s) released as they are"
                if idle and p.release_idle
                else ""
            ),
        )
        if not packing.emptied:
            explanations.append(
                "no host can be emptied: "
                + "; ".join(
                    f"{h}: {why}" for h, why in sorted(packing.kept.items())[:FAILURES_SHOWN]
                )
                if packing.kept
                else "no host can be emptied: no host in scope runs instances"
            )
        else:
            shown = sorted(packing.kept.items())[:FAILURES_SHOWN]
            if shown:
                explanations.append("kept, e.g. " + "; ".join(f"{h}: {why}" for h, why in shown))
        return Solution(packing.moves, tuple(changes), efficacy, tuple(explanations))

    def _placement(self, cluster: Cluster, enabled: Sequence[str]) -> Placement:
        filters = placement_filters(self.parameters)
        filters.append(CpuHeadroomFilter(self.parameters.max_cpu_percent))
        return Placement(cluster, filters, candidates=enabled)

    def _greedy(self, cluster: Cluster, placement: Placement, active: Sequence[str]) -> Packing:
        p = self.parameters
        soft_is_hard = not p.soft_rules_may_bend
        index = HostIndex(active, lambda h: placement.view(h).free_memory_mb)
        budget = MoveBudget.of(p)
        receivers: set[str] = set()
        emptied: list[str] = []
        kept: dict[str, str] = {}
        moves: list[Move] = []

        def cost(host: str) -> tuple[float, float, str]:
            view = placement.view(host)
            return (float(view.memory_mb_used), view.cpu_cores_used, host)

        for host in sorted(active, key=cost):
            if host in receivers:
                kept[host] = "it receives instances in this plan"
                continue
            residents = placement.instances_on(host)
            held = [(i.name, hold_reason(i, p)) for i in residents]
            held = [(n, why) for n, why in held if why]
            if held:
                kept[host] = ", ".join(f"{n} is {why}" for n, why in held[:3])
                continue
            over = budget.refusal(residents)
            if over:
                kept[host] = over
                continue
            units = units_of(residents, cluster, soft_is_hard=soft_is_hard)
            units.sort(key=lambda u: (-sum(i.memory_mb for i in u), u[0].name))
            index.remove(host)
            mark = placement.checkpoint()
            landed: list[tuple[tuple[Instance, ...], str, dict[str, str]]] = []
            failure = ""
            for unit in units:
                destination, refused = self._fit(placement, index, unit, host)
                if destination is None:
                    names = ", ".join(i.name for i in unit)
                    failure = f"{names} has no destination ({rejections_text(refused)})"
                    break
                landed.append((unit, destination, refused))
                index.refresh(destination)
            if failure:
                placement.rollback(mark)
                for _, destination, _ in landed:
                    index.refresh(destination)
                index.add(host)
                kept[host] = failure
                continue
            emptied.append(host)
            budget.spend(residents)
            memory = sum(i.memory_mb for i in residents)
            for unit, destination, refused in landed:
                receivers.add(destination)
                for instance in unit:
                    moves.append(
                        _move(
                            instance,
                            host,
                            destination,
                            len(residents),
                            memory,
                            refused,
                            placement.view(destination).free_memory_mb,
                        )
                    )
        return Packing(tuple(moves), tuple(emptied), kept)

    def _fit(
        self, placement: Placement, index: HostIndex, unit: Sequence[Instance], source: str
    ) -> tuple[str | None, dict[str, str]]:
        """Best fit: the host with the least free RAM that takes the whole unit."""
        need = sum(i.memory_mb for i in unit)
        refused: dict[str, str] = {}
        for examined, host in enumerate(index.at_least(need - 1e-6)):
            if examined >= self.parameters.scan_limit:
                refused["..."] = f"scan limit of {self.parameters.scan_limit} hosts reached"
                break
            refusal = place_unit(placement, unit, source, host)
            if refusal is None:
                return host, refused
            refused[host] = refusal
        if not refused:
            refused["all"] = f"no host in scope has {need} MB of RAM free"
        return None, refused


def _idle(placement: Placement, host: str) -> bool:
    view = placement.view(host)
    # Reported use beyond the model means something we do not see runs there.
    return view.instance_count == 0 and view.vcpus_used == 0 and view.memory_mb_used == 0


def _power(cluster: Cluster, host: str, default: float) -> float:
    return float(cluster.hosts[host].metrics.get("power", default))


def _move(
    instance: Instance,
    source: str,
    destination: str,
    count: int,
    memory: int,
    refused: Mapping[str, str],
    free_after: float,
) -> Move:
    return Move(
        instance.name,
        source,
        destination,
        live=instance.live,
        reason=(
            f"{instance.name} ({instance.vcpus} vCPU, {instance.memory_mb} MB) leaves {source}, "
            f"which is emptied to be released ({count} instance(s), {memory} MB to move, the "
            f"cheapest host left to empty that could be). Destination {destination}: the "
            f"tightest fit that passes every filter ({free_after:g} MB RAM left free). "
            f"Examined before it: {rejections_text(refused)}"
        ),
    )


def lower_bound_hosts(cluster: Cluster, hosts: Sequence[str], max_cpu_percent: float) -> int:
    """Fewest hosts that could hold the instances on `hosts`, in each dimension alone
    (vCPU, RAM, measured CPU under the ceiling), taking the biggest hosts first."""
    names = set(hosts)
    vcpus = memory = cores = 0.0
    found = False
    for i in cluster.instances.values():
        if i.host in names:
            found = True
            vcpus += i.flavor.vcpus
            memory += i.flavor.memory_mb
            cores += i.cpu_cores_used
    if not found:
        return 0
    demands = (vcpus, memory, cores)

    def capacities(host: str) -> tuple[float, float, float]:
        h = cluster.hosts[host]
        return (
            (h.vcpus - h.reserved_host_cpus) * h.cpu_allocation_ratio,
            (h.memory_mb - h.reserved_host_memory_mb) * h.ram_allocation_ratio,
            h.vcpus * max_cpu_percent / 100.0,
        )

    caps = [capacities(h) for h in hosts]
    bound = 1
    for d, demand in enumerate(demands):
        total, count = 0.0, 0
        for cap in sorted((c[d] for c in caps), reverse=True):
            if total >= demand - 1e-9:
                break
            total += cap
            count += 1
        bound = max(bound, count)
    return bound
