"""Workload balancing: lower the standard deviation of host use (measured CPU or
RAM, in percent) by moving instances from the busiest hosts to the idlest, one
move at a time, each the largest reduction on offer and never below min_gain."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    weigher_context,
    with_implicit_weights,
)
from opendrs.decision.weighers import HostWeigher, weigh, weighers_from
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidInput
from opendrs.domain.host import HostState
from opendrs.domain.instance import GroupPolicy, Instance
from opendrs.domain.solution import Move, Solution

NAME = "workload_balance"
GOAL = "workload_balancing"
METRICS = ("cpu", "ram")


@dataclass(frozen=True, slots=True)
class WorkloadBalanceParameters(AuditParameters):
    """metric: cpu (measured cores) or ram (memory.usage, else the flavor's RAM).
    min_gain: the least drop a move must bring to the sum of squared deviations
    from the mean use, in squared percentage points; unlike the standard deviation
    it does not shrink with the cluster's size (moving 5 points of use from a 60%
    host to a 40% one gains 150). max_cpu_percent: measured CPU no receiving host may pass.
    sources, destinations: how many of the busiest and idlest hosts each step
    compares (wider is slower and finds slightly better moves)."""

    metric: str = "cpu"
    min_gain: float = 10.0
    max_cpu_percent: float = 90.0
    sources: int = 3
    destinations: int = 4
    weights: Mapping[str, float] = field(default_factory=lambda: {"cpu_load": 1.0})

    def __post_init__(self) -> None:
        AuditParameters.__post_init__(self)
        if self.metric not in METRICS:
            raise InvalidInput(
                f"must be cpu or ram, got {self.metric!r}", field="parameters.metric"
            )
        if self.min_gain < 0:
            raise InvalidInput(
                f"must be 0 or more, got {self.min_gain:g}", field="parameters.min_gain"
            )
        for name in ("sources", "destinations"):
            if getattr(self, name) < 1:
                raise InvalidInput("must be at least 1", field=f"parameters.{name}")
        weighers_from(with_implicit_weights(self.weights))


@dataclass(slots=True)
class _Spread:
    """Sum and sum of squares of host use, so each candidate move's new standard
    deviation costs O(1)."""

    use: dict[str, float]
    total: float = 0.0
    squares: float = 0.0

    def __post_init__(self) -> None:
        self.total = sum(self.use.values())
        self.squares = sum(u * u for u in self.use.values())

    def std(self) -> float:
        n = len(self.use)
        if n == 0:
            return 0.0
        mean = self.total / n
        return math.sqrt(max(0.0, self.squares / n - mean * mean))

    def deviation(self) -> float:
        """Sum of squared deviations from the mean use, in squared points."""
        n = len(self.use)
        return max(0.0, self.squares - self.total * self.total / n) if n else 0.0

    def deviation_after(
        self, source: str, s_delta: float, destination: str, d_delta: float
    ) -> float:
        n = len(self.use)
        a, b = self.use[source], self.use[destination]
        total = self.total - s_delta + d_delta
        squares = self.squares - a * a - b * b + (a - s_delta) ** 2 + (b + d_delta) ** 2
        return max(0.0, squares - total * total / n)

    def shift(self, source: str, s_delta: float, destination: str, d_delta: float) -> None:
        a, b = self.use[source], self.use[destination]
        self.use[source] = a - s_delta
        self.use[destination] = b + d_delta
        self.total += d_delta - s_delta
        self.squares += (a - s_delta) ** 2 + (b + d_delta) ** 2 - a * a - b * b


class WorkloadBalance:
    name: ClassVar[str] = NAME
    goal: ClassVar[str] = GOAL
    display_name: ClassVar[str] = "Even out host use (standard deviation)"
    parameters_type: ClassVar[type[WorkloadBalanceParameters]] = WorkloadBalanceParameters

    def __init__(self, parameters: WorkloadBalanceParameters | None = None) -> None:
        self.parameters = parameters or WorkloadBalanceParameters()

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> WorkloadBalance:
        return cls(
            parse_parameters(WorkloadBalanceParameters, parameters, source=f"strategy {NAME}")
        )

    def _load(self, instance: Instance) -> float:
        if self.parameters.metric == "cpu":
            return instance.cpu_cores_used
        return instance.metrics.get("memory.usage", float(instance.memory_mb))

    def _capacity(self, cluster: Cluster, host: str) -> float:
        h = cluster.hosts[host]
        return float(h.vcpus if self.parameters.metric == "cpu" else h.memory_mb)

    def execute(self, cluster: Cluster) -> Solution:
        p = self.parameters
        scope = resolve_scope(cluster, p.scope, f"strategy {NAME}")
        hosts = [
            h
            for h in scope
            if cluster.hosts[h].state == HostState.ENABLED and self._capacity(cluster, h) > 0
        ]
        filters = placement_filters(p)
        filters.append(CpuHeadroomFilter(p.max_cpu_percent))
        weighers = weighers_from(with_implicit_weights(p.weights), weigher_context(cluster, p))
        placement = Placement(cluster, filters, weighers, candidates=hosts)
        loads: dict[str, float] = {h: 0.0 for h in hosts}
        for instance in cluster.instances.values():
            if instance.host in loads:
                loads[instance.host] += self._load(instance)
        capacity = {h: self._capacity(cluster, h) for h in hosts}
        spread = _Spread({h: 100.0 * loads[h] / capacity[h] for h in hosts})
        index = HostIndex(hosts, lambda h: spread.use[h])
        before = spread.std()
        budget = MoveBudget.of(p)
        moved: set[str] = set()
        moves: list[Move] = []
        explanations: list[str] = []
        affinity = {
            name
            for name, g in cluster.groups.items()
            if g.policy == GroupPolicy.AFFINITY
            or (g.policy == GroupPolicy.SOFT_AFFINITY and not p.soft_rules_may_bend)
        }
        stop = ""
        load_of = {i.name: self._load(i) for i in cluster.instances.values() if i.host in capacity}
        n = len(hosts)
        while n > 1:
            candidates: list[tuple[float, int, str, str, Instance]] = []
            current = spread.deviation()
            total, squares, use = spread.total, spread.squares, spread.use
            coolest = [(d, use[d], 100.0 / capacity[d]) for d in index.lowest(p.destinations)]
            for source in index.highest(p.sources):
                a = use[source]
                per_source = 100.0 / capacity[source]
                for instance in placement.instances_on(source):
                    if instance.name in moved or hold_reason(instance, p):
                        continue
                    if affinity.intersection(instance.groups):
                        # Affinity members move only as a whole group; balancing
                        # leaves them where they are together.
                        continue
                    load = load_of.get(instance.name, 0.0)
                    if load <= 0:
                        continue
                    s_delta = load * per_source
                    for destination, b, per_destination in coolest:
                        if b >= a:
                            continue
                        d_delta = load * per_destination
                        moved_total = total - s_delta + d_delta
                        after = (
                            squares
                            - a * a
                            - b * b
                            + (a - s_delta) ** 2
                            + (b + d_delta) ** 2
                            - moved_total * moved_total / n
                        )
                        gain = current - max(0.0, after)
                        if gain >= p.min_gain and gain > 1e-12:
                            candidates.append(
                                (-gain, instance.memory_mb, instance.name, destination, instance)
                            )
            if not candidates:
                stop = (
                    f"no move among the {p.sources} busiest and {p.destinations} idlest hosts "
                    f"cuts the squared deviations by {p.min_gain:g} or more"
                )
                break
            # Names and destinations are unique per candidate: the instance is never compared.
            candidates.sort()
            chosen = self._first_accepted(placement, candidates, budget, weighers)
            if chosen is None:
                stop = (
                    "every improving move is refused by the filters or the budget, e.g. "
                    f"{candidates[0][2]} → {candidates[0][3]}: "
                    f"{self._why_not(placement, candidates[0], budget)}"
                )
                break
            gain, instance, destination, refused = chosen
            source = instance.host
            load = load_of[instance.name]
            was_s, was_d = spread.use[source], spread.use[destination]
            placement.place(instance, destination)
            spread.shift(
                source,
                100.0 * load / capacity[source],
                destination,
                100.0 * load / capacity[destination],
            )
            index.refresh(source)
            index.refresh(destination)
            budget.spend([instance])
            moved.add(instance.name)
            moves.append(
                Move(
                    instance.name,
                    source,
                    destination,
                    live=instance.live,
                    reason=(
                        f"{instance.name} ({p.metric} load {load:.2f}, {instance.memory_mb} MB) "
                        f"leaves {source} ({was_s:.1f}% → {spread.use[source]:.1f}%) for "
                        f"{destination} ({was_d:.1f}% → {spread.use[destination]:.1f}%): the "
                        f"largest cut of the squared deviations on offer ({gain:.1f}); the "
                        f"{p.metric} standard deviation falls to {spread.std():.2f} points. "
                        f"Refused before it: {rejections_text(refused)}"
                    ),
                )
            )
        after = spread.std()
        if not moves:
            explanations.append(
                f"no move proposed: {stop or 'fewer than two enabled hosts in scope'} "
                f"(standard deviation {before:.2f} points)"
            )
        else:
            explanations.append(
                f"{p.metric} standard deviation {before:.2f} → {after:.2f} points by "
                f"{len(moves)} migration(s); stopped: {stop or 'no host left to compare'}"
            )
        memory = sum(cluster.instances[m.instance].memory_mb for m in moves)
        efficacy = {
            "instances_count": float(
                sum(1 for i in cluster.instances.values() if i.host in capacity)
            ),
            "instance_migrations_count": float(len(moves)),
            "standard_deviation_before_audit": before,
            "standard_deviation_after_audit": after,
            "memory_moved_mb": float(memory),
            "bytes_moved": float(memory * 1024 * 1024),
        }
        return Solution(tuple(moves), (), efficacy, tuple(explanations))

    def _first_accepted(
        self,
        placement: Placement,
        candidates: list[tuple[float, int, str, str, Instance]],
        budget: MoveBudget,
        weighers: Sequence[HostWeigher],
    ) -> tuple[float, Instance, str, dict[str, str]] | None:
        """The best candidate the filters and the budget accept. Among candidates of
        (nearly) equal gain for one instance, the weighers pick the destination."""
        refused: dict[str, str] = {}
        for neg_gain, _, name, destination, instance in candidates:
            if budget.refusal([instance]):
                continue
            refusal = placement.refusal(instance, destination, instance.host)
            if refusal is not None:
                refused[f"{name}→{destination}"] = refusal
                continue
            ties = [
                c[3]
                for c in candidates
                if c[2] == name and abs(c[0] - neg_gain) < 1e-9 and c[3] != destination
            ]
            if ties:
                views = [placement.view(d) for d in (destination, *ties)]
                views = [v for v in views if placement.refusal(instance, v.name) is None]
                ranked = weigh(views, instance, weighers)
                destination = ranked[0][0].name if ranked else destination
            return -neg_gain, instance, destination, refused
        return None

    def _why_not(
        self,
        placement: Placement,
        candidate: tuple[float, int, str, str, Instance],
        budget: MoveBudget,
    ) -> str:
        instance, destination = candidate[4], candidate[3]
        return budget.refusal([instance]) or (
            placement.refusal(instance, destination, instance.host) or "refused"
        )
