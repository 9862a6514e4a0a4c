"""Overload relief: bring every host whose measured CPU is above a threshold back
to a target by moving the fewest instances, the cheapest (least memory) among
equally few, onto hosts the filters accept and that stay at or under the target."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from opendrs.decision.filters import AllowedHostsFilter, CpuHeadroomFilter, HostFilter
from opendrs.decision.parameters import parse_parameters
from opendrs.decision.placement import Placement, Ranking
from opendrs.decision.policy import (
    AuditParameters,
    MoveBudget,
    check_hosts,
    hold_reason,
    placement_filters,
    resolve_scope,
    weigher_context,
    with_implicit_weights,
)
from opendrs.decision.weighers import weighers_from
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidInput
from opendrs.domain.instance import Instance, InstanceState
from opendrs.domain.solution import Move, Solution

NAME = "overload_relief"
GOAL = "overload_relief"

# Bounds on the search so one audit stays quick on large hosts; when one is hit
# the explanation says so, since the answer may then not be the cheapest.
SET_LIMIT = 5000  # candidate sets of one size collected
ATTEMPT_LIMIT = 200  # of those, tried for destinations
STEP_LIMIT = 5000  # rankings and destination trials per overloaded host
REJECTIONS_SHOWN = 10
EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class OverloadReliefParameters(AuditParameters):
    """The scope names the hosts relieved (hosts, zone:NAME, aggregate:NAME);
    destinations, when given, the only hosts that may receive."""

    threshold: float = 80.0
    target: float = 75.0
    destinations: tuple[str, ...] = ()
    weights: Mapping[str, float] = field(default_factory=lambda: {"cpu_load": 1.0})

    def __post_init__(self) -> None:
        AuditParameters.__post_init__(self)
        if self.threshold <= 0:
            raise InvalidInput(
                f"threshold must be above 0, got {self.threshold:g}", field="parameters.threshold"
            )
        if not 0 < self.target <= self.threshold:
            raise InvalidInput(
                f"target must be above 0 and at most the threshold ({self.threshold:g}), "
                f"got {self.target:g}",
                field="parameters.target",
            )
        try:
            weighers_from(with_implicit_weights(self.weights))
        except InvalidInput as exc:
            raise InvalidInput(exc.problem, field=f"parameters.{exc.field}") from None


@dataclass(frozen=True, slots=True)
class _Placed:
    instance: Instance
    destination: str
    weight: float
    ranking: Ranking
    destination_before: float
    destination_after: float


@dataclass(slots=True)
class _Budget:
    left: int

    def spend(self) -> bool:
        self.left -= 1
        return self.left >= 0


@dataclass(frozen=True, slots=True)
class _Outcome:
    moves: tuple[Move, ...]
    explanation: str


class OverloadRelief:
    name: ClassVar[str] = NAME
    goal: ClassVar[str] = GOAL
    display_name: ClassVar[str] = "Relieve overloaded hosts"
    parameters_type: ClassVar[type[OverloadReliefParameters]] = OverloadReliefParameters

    def __init__(self, parameters: OverloadReliefParameters | None = None) -> None:
        self.parameters = parameters or OverloadReliefParameters()

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> OverloadRelief:
        return cls(
            parse_parameters(OverloadReliefParameters, parameters, source=f"strategy {NAME}")
        )

    def execute(self, cluster: Cluster) -> Solution:
        p = self.parameters
        scope = resolve_scope(cluster, p.scope, f"strategy {NAME}")
        check_hosts(cluster, p.destinations, "destinations", f"strategy {NAME}")
        weighers = weighers_from(with_implicit_weights(p.weights), weigher_context(cluster, p))
        placement = Placement(cluster, self._filters(), weighers)
        before = {h: placement.cpu_percent(h) for h in scope}
        overloaded = sorted(
            (h for h in scope if before[h] > p.threshold), key=lambda h: (-before[h], h)
        )
        moves: list[Move] = []
        explanations: list[str] = []
        if not overloaded:
            explanations.append(f"no host in scope is above {p.threshold:g}% CPU")
        budget = MoveBudget.of(p)
        for host in overloaded:
            mark = placement.checkpoint()
            outcome = self._relieve(placement, host)
            leaving = [cluster.instances[m.instance] for m in outcome.moves]
            over = budget.refusal(leaving)
            if over:
                placement.rollback(mark)
                explanations.append(f"{outcome.explanation}, but not planned: {over}")
                continue
            budget.spend(leaving)
            moves.extend(outcome.moves)
            explanations.append(outcome.explanation)
        after = {h: placement.cpu_percent(h) for h in scope}
        moved_mb = sum(cluster.instances[m.instance].memory_mb for m in moves)
        efficacy = {
            "overloaded_hosts_before": float(len(overloaded)),
            "overloaded_hosts_after": float(sum(1 for h in scope if after[h] > p.threshold)),
            "hosts_above_target_after": float(
                sum(1 for h in overloaded if after[h] > p.target + EPSILON)
            ),
            "instance_migrations_count": float(len(moves)),
            "memory_moved_mb": float(moved_mb),
        }
        return Solution(moves=tuple(moves), efficacy=efficacy, explanations=tuple(explanations))

    def _filters(self) -> list[HostFilter]:
        p = self.parameters
        filters = placement_filters(p)
        if p.destinations:
            filters.append(AllowedHostsFilter(p.destinations))
        filters.append(CpuHeadroomFilter(p.target))
        return filters

    def _relieve(self, placement: Placement, host: str) -> _Outcome:
        p = self.parameters
        view = placement.view(host)
        before = view.cpu_percent
        excess = view.cpu_cores_used - p.target * view.host.vcpus / 100.0
        residents = placement.instances_on(host)
        pinned = [i for i in residents if hold_reason(i, p)]
        movable = sorted(
            (
                i
                for i in residents
                if not hold_reason(i, p)
                and i.state == InstanceState.ACTIVE
                and i.cpu_cores_used > 0
            ),
            key=lambda i: (i.memory_mb, i.name),
        )
        headline = f"{host} at {before:.1f}% (threshold {p.threshold:g}%)"
        # Placements only add load to destinations, so an instance with nowhere
        # to go now has nowhere to go in any set: leave it out of the search.
        stuck: dict[str, Ranking] = {}
        reachable: set[str] = set()
        for instance in movable:
            ranking = placement.rank(instance, host)
            if not ranking.candidates:
                stuck[instance.name] = ranking
            reachable.update(name for name, _ in ranking.candidates)
        movable = [i for i in movable if i.name not in stuck]
        # What the reachable hosts can absorb before reaching the target bounds
        # what can be shed: a quick verdict on hopeless cases, before any search.
        room = sum(
            max(
                0.0,
                p.target * placement.view(h).host.vcpus / 100.0 - placement.view(h).cpu_cores_used,
            )
            for h in reachable
        )
        pinned_note = (
            f"; {len(pinned)} instance(s) stay ("
            + ", ".join(f"{i.name} {hold_reason(i, p)}" for i in pinned[:3])
            + ")"
            if pinned
            else ""
        )
        available = sum(i.cpu_cores_used for i in movable)
        if available < excess - EPSILON:
            stuck_note = ""
            if stuck:
                name, ranking = min(stuck.items())
                stuck_note = (
                    f"; {len(stuck)} instance(s) have no destination, e.g. {name}: "
                    f"{_rejections(ranking.rejections, host)}"
                )
            return _Outcome(
                (),
                f"{headline} cannot be brought to {p.target:g}%: it must shed {excess:.2f} "
                f"cores and its movable active instances with a possible destination use "
                f"{available:.2f}{pinned_note}{stuck_note}",
            )
        if room < excess - EPSILON:
            return _Outcome(
                (),
                f"{headline} cannot be brought to {p.target:g}%: it must shed {excess:.2f} "
                f"cores and the {len(reachable)} host(s) that could take its instances have "
                f"{room:.2f} cores of room under the target{pinned_note}",
            )
        budget = _Budget(STEP_LIMIT)
        limited = False
        for size in range(_fewest(movable, excess), len(movable) + 1):
            sets, cut = _sets_of(movable, size, excess)
            limited = limited or cut or len(sets) > ATTEMPT_LIMIT
            for members in sets[:ATTEMPT_LIMIT]:
                placed = _assign(placement, members, host, budget)
                if placed is not None:
                    return self._relieved(placement, host, before, placed, len(sets))
                if budget.left <= 0:
                    break
            if budget.left <= 0:
                limited = True
                break
        largest = max(movable, key=lambda i: (i.cpu_cores_used, i.name))
        ranking = placement.rank(largest, host)
        search_note = " (the search was cut short at its limits)" if limited else ""
        return _Outcome(
            (),
            f"{headline} cannot be brought to {p.target:g}%: no set of its movable instances "
            f"shedding {excess:.2f} cores finds destinations{search_note}{pinned_note}; "
            f"e.g. {largest.name} ({largest.cpu_cores_used:.2f} cores, {largest.memory_mb} MB): "
            f"{_rejections(ranking.rejections, host)}",
        )

    def _relieved(
        self,
        placement: Placement,
        host: str,
        before: float,
        placed: Sequence[_Placed],
        considered: int,
    ) -> _Outcome:
        p = self.parameters
        after = placement.cpu_percent(host)
        total_mb = sum(x.instance.memory_mb for x in placed)
        why_set = (
            f"one of the fewest instances ({len(placed)}) whose move brings {host} from "
            f"{before:.1f}% to {after:.1f}% (target {p.target:g}%), the set moving the least "
            f"memory ({total_mb} MB) of {considered} such set(s)"
        )
        moves: list[Move] = []
        for x in placed:
            i = x.instance
            reason = (
                f"{i.name} uses {i.cpu_cores_used:.2f} cores ({i.cpu_util:g}% of {i.vcpus} "
                f"vCPUs) and {i.memory_mb} MB: {why_set}. Destination {x.destination}: "
                f"weight {x.weight:.3f}, ranked {_rank(x)} of {len(x.ranking.candidates)} "
                f"candidate(s) that passed the filters, CPU {x.destination_before:.1f}% -> "
                f"{x.destination_after:.1f}%. Rejected: {_rejections(x.ranking.rejections, host)}"
            )
            moves.append(Move(i.name, host, x.destination, live=True, reason=reason))
        return _Outcome(
            tuple(moves),
            f"{host} at {before:.1f}% (threshold {p.threshold:g}%) relieved to {after:.1f}% "
            f"by {len(moves)} move(s) of {total_mb} MB",
        )


def _fewest(movable: Sequence[Instance], excess: float) -> int:
    """A lower bound on the set size: the largest consumers first."""
    total = 0.0
    for count, cores in enumerate(sorted((i.cpu_cores_used for i in movable), reverse=True), 1):
        total += cores
        if total >= excess - EPSILON:
            return count
    return max(len(movable), 1)


def _sets_of(
    movable: Sequence[Instance], size: int, excess: float
) -> tuple[list[tuple[Instance, ...]], bool]:
    """Every `size`-set of `movable` that sheds at least `excess` cores, cheapest
    (least memory, then names) first; True when SET_LIMIT cut the enumeration."""
    cores = [i.cpu_cores_used for i in movable]
    count = len(movable)
    # best[start][k]: the most cores any k instances from movable[start:] carry,
    # so hopeless branches are cut before they are walked.
    best: list[list[float]] = []
    for start in range(count + 1):
        tail = sorted(cores[start:], reverse=True)
        sums = [0.0]
        for c in tail[:size]:
            sums.append(sums[-1] + c)
        sums.extend([float("-inf")] * (size + 1 - len(sums)))
        best.append(sums)
    found: list[tuple[int, ...]] = []
    chosen: list[int] = []

    def walk(start: int, shed: float) -> None:
        need = size - len(chosen)
        if need == 0:
            if shed >= excess - EPSILON:
                found.append(tuple(chosen))
            return
        if shed + best[start][need] < excess - EPSILON:
            return
        for index in range(start, count - need + 1):
            if len(found) >= SET_LIMIT:
                return
            chosen.append(index)
            walk(index + 1, shed + cores[index])
            chosen.pop()

    walk(0, 0.0)
    sets = [tuple(movable[i] for i in members) for members in found]
    sets.sort(key=lambda s: (sum(i.memory_mb for i in s), [i.name for i in s]))
    return sets, len(found) >= SET_LIMIT


def _assign(
    placement: Placement, members: Sequence[Instance], source: str, budget: _Budget
) -> list[_Placed] | None:
    """Destinations for all of `members` at once, placed in the virtual view, or
    None (with the view unchanged). Hardest first; the weighers' order, with
    backtracking, so a set that fits only one way is still found."""
    order = sorted(members, key=lambda i: (-i.cpu_cores_used, -i.memory_mb, i.name))
    placed: list[_Placed] = []
    start = placement.checkpoint()

    def place_from(index: int) -> bool:
        if index == len(order):
            return True
        instance = order[index]
        if not budget.spend():
            return False
        ranking = placement.rank(instance, source)
        for destination, weight in ranking.candidates:
            if not budget.spend():
                return False
            mark = placement.checkpoint()
            dest_before = placement.cpu_percent(destination)
            placement.place(instance, destination)
            placed.append(
                _Placed(
                    instance,
                    destination,
                    weight,
                    ranking,
                    dest_before,
                    placement.cpu_percent(destination),
                )
            )
            if place_from(index + 1):
                return True
            placed.pop()
            placement.rollback(mark)
        return False

    if place_from(0):
        return placed
    placement.rollback(start)
    return None


def _rank(placed: _Placed) -> int:
    names = [name for name, _ in placed.ranking.candidates]
    return names.index(placed.destination) + 1


def _rejections(rejections: Mapping[str, str], source: str) -> str:
    shown = [f"{h} ({why})" for h, why in sorted(rejections.items()) if h != source]
    if not shown:
        return "none"
    extra = len(shown) - REJECTIONS_SHOWN
    text = "; ".join(shown[:REJECTIONS_SHOWN])
    return f"{text}; and {extra} more" if extra > 0 else text
