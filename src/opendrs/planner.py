"""The planner: turns a strategy's Solution into an ActionPlan whose DAG keeps every
state the cluster can pass through (any set of ready actions running at once, a
migrating VM counted on both hosts) within capacity and hard server-group policy."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opendrs.domain.action import (
    Action,
    ActionPlan,
    ActionState,
    ActionType,
    PlanLimits,
    PlanState,
)
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import PlanningError
from opendrs.domain.event import new_ids
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import GroupPolicy, Instance
from opendrs.domain.solution import HostChange, Move, Solution

__all__ = ["PlanLimits", "build_plan", "capacity", "usage"]

# The two dimensions capacity is checked in, and how a shortfall reads.
_UNITS = ("vCPU", "MB RAM")
_EPSILON = 1e-9
# Nodes the order search may visit before it gives up; small plans never get close.
_SEARCH_BUDGET = 20_000
_DRAINING_STATES = frozenset({HostState.DISABLED, HostState.MAINTENANCE})
_HARD_POLICIES = (GroupPolicy.AFFINITY, GroupPolicy.ANTI_AFFINITY)
# How far the search for temporary hops goes: hops per plan, stuck moves tried per
# hop, hosts tried per move.
_MAX_HOPS = 4
_MAX_HOP_CANDIDATES = 6
_MAX_HOP_HOSTS = 3

Amounts = tuple[float, float]


def capacity(host: Host) -> Amounts:
    """What a host may hold: vCPUs and RAM as Placement counts them (the same rule
    the decision engine's filters use, so a plan never refuses what they chose)."""
    return (host.allocatable_vcpus, host.allocatable_memory_mb)


def usage(instance: Instance) -> Amounts:
    """What an instance takes from its host: its flavor's vCPUs and RAM."""
    return (float(instance.vcpus), float(instance.memory_mb))


def build_plan(
    solution: Solution, cluster: Cluster, limits: PlanLimits, audit_id: str, now: float
) -> ActionPlan:
    """Order `solution` on `cluster` into an action plan; raises PlanningError (naming the
    moves and why) when the target is unsafe or no safe order exists."""
    message = "; ".join(solution.explanations)
    if solution.empty:
        return ActionPlan(
            audit_id=audit_id,
            actions=(),
            state=PlanState.SUCCEEDED,
            efficacy=dict(solution.efficacy),
            message=message or "nothing to do",
            created_at=now,
            limits=limits,
        )
    moves = _checked_moves(solution.moves, cluster)
    changes = _checked_changes(solution.host_changes, cluster)
    initial, after = _rooms(moves, cluster)
    _check_target(moves, changes, cluster, after)
    moves, chained, order = _ordered_moves(moves, changes, cluster, initial)
    graph = _Graph()
    _link_moves(graph, order, moves, cluster, chained, initial)
    _link_host_changes(graph, moves, changes, cluster)
    actions = graph.actions()
    return ActionPlan(
        audit_id=audit_id,
        actions=actions,
        efficacy=dict(solution.efficacy),
        message=message,
        created_at=now,
        limits=limits,
    )


# --- checks on the input -------------------------------------------------


def _describe(move: Move) -> str:
    return f"{move.instance} ({move.source}→{move.destination})"


def _checked_moves(moves: Sequence[Move], cluster: Cluster) -> tuple[Move, ...]:
    seen: set[str] = set()
    for move in moves:
        name = move.instance
        problem = ""
        instance = cluster.instances.get(name)
        if instance is None:
            problem = "the instance is not in the cluster"
        elif name in seen:
            problem = "the instance is moved more than once"
        elif move.source not in cluster.hosts:
            problem = f"source host {move.source!r} is not in the cluster"
        elif move.destination not in cluster.hosts:
            problem = f"destination host {move.destination!r} is not in the cluster"
        elif move.source == move.destination:
            problem = "source and destination are the same host"
        elif instance.host != move.source:
            problem = f"the instance runs on {instance.host!r}, not on the source"
        elif not instance.movable:
            problem = "the instance is marked never_migrate"
        if problem:
            raise PlanningError(f"move {_describe(move)}: {problem}", moves=(name,))
        seen.add(name)
    return tuple(moves)


def _checked_changes(changes: Sequence[HostChange], cluster: Cluster) -> tuple[HostChange, ...]:
    for change in changes:
        if change.host not in cluster.hosts:
            raise PlanningError(
                f"host change {change.host}→{change.state.value}: host is not in the cluster"
            )
    return tuple(changes)


def _final_state(host: str, changes: Sequence[HostChange], cluster: Cluster) -> HostState:
    state = cluster.hosts[host].state
    for change in changes:
        if change.host == host:
            state = change.state
    return state


def _policy_groups(instance: Instance, cluster: Cluster, policy: GroupPolicy) -> list[str]:
    if not instance.groups:
        return []
    return [
        g for g in instance.groups if g in cluster.groups and cluster.groups[g].policy == policy
    ]


def _check_target(
    moves: Sequence[Move],
    changes: Sequence[HostChange],
    cluster: Cluster,
    rooms: Mapping[str, Amounts],
) -> None:
    """The end state must be safe before any order can be: hosts that receive VMs are
    enabled and big enough (`rooms`: what each destination has left at the end),
    powered-off hosts are empty, group policies hold."""
    placement: Mapping[str, str] = {}
    if cluster.groups or any(c.state == HostState.OFF for c in changes):
        placement = _placement_after(moves, cluster)

    for move in moves:
        state = (
            _final_state(move.destination, changes, cluster)
            if changes
            else cluster.hosts[move.destination].state
        )
        if state != HostState.ENABLED:
            raise PlanningError(
                f"move {_describe(move)}: destination {move.destination} ends the plan "
                f"{state.value}; only enabled hosts take instances",
                moves=(move.instance,),
            )

    for change in changes:
        if change.state != HostState.OFF:
            continue
        staying = sorted(
            name
            for name, i in cluster.instances.items()
            if i.host == change.host and placement[name] == change.host
        )
        if staying:
            raise PlanningError(
                f"powering off {change.host} would stop {', '.join(staying)}, "
                "which the plan leaves there"
            )

    destinations = {m.destination for m in moves}
    for host in sorted(destinations):
        room = rooms[host]
        # Room is two-dimensional (_UNITS).
        if room[0] < -_EPSILON or room[1] < -_EPSILON:
            landing = tuple(m.instance for m in moves if m.destination == host)
            raise PlanningError(
                f"host {host} would be over capacity after the plan by "
                f"{_shortfall(room)}; moves onto it: {', '.join(landing)}",
                moves=landing,
            )

    for move in moves:
        instance = cluster.instances[move.instance]
        for group in _policy_groups(instance, cluster, GroupPolicy.ANTI_AFFINITY):
            partners = sorted(
                name
                for name, i in cluster.instances.items()
                if name != move.instance
                and group in i.groups
                and placement[name] == move.destination
            )
            if partners:
                raise PlanningError(
                    f"move {_describe(move)} breaks anti-affinity group {group}: "
                    f"{', '.join(partners)} would share {move.destination}",
                    moves=(move.instance, *partners),
                )
        for group in _policy_groups(instance, cluster, GroupPolicy.AFFINITY):
            members = [n for n, i in cluster.instances.items() if group in i.groups]
            together_before = len({cluster.instances[n].host for n in members}) == 1
            together_after = len({placement[n] for n in members}) == 1
            if together_before and not together_after:
                raise PlanningError(
                    f"move {_describe(move)} splits affinity group {group} "
                    f"({', '.join(sorted(members))})",
                    moves=(move.instance,),
                )


def _placement_after(moves: Sequence[Move], cluster: Cluster) -> dict[str, str]:
    placement = {name: i.host for name, i in cluster.instances.items()}
    for move in moves:
        placement[move.instance] = move.destination
    return placement


def _rooms(
    moves: Sequence[Move], cluster: Cluster
) -> tuple[dict[str, list[float]], dict[str, Amounts]]:
    """The free room of every host before the plan, and of each destination after it,
    in one pass over the instances: each host's amounts are taken off in instance
    order either way, so a sum does not depend on which other hosts are asked for.
    (The order search works on copies of the first; the ledger and the hop search
    only read it.)"""
    before = {name: list(capacity(h)) for name, h in cluster.hosts.items()}
    after = {m.destination: list(capacity(cluster.hosts[m.destination])) for m in moves}
    going_to = {m.instance: m.destination for m in moves}
    # `usage` of an instance depends on its flavor only, and a cluster has few.
    by_flavor: dict[int, Amounts] = {}
    for name, instance in cluster.instances.items():
        flavor = instance.flavor
        amount = by_flavor.get(id(flavor))
        if amount is None:
            amount = by_flavor[id(flavor)] = (float(flavor.vcpus), float(flavor.memory_mb))
        vcpus, memory_mb = amount
        left = before.get(instance.host)
        if left is not None:
            left[0] -= vcpus
            left[1] -= memory_mb
        left = after.get(going_to.get(name, instance.host))
        if left is not None:
            left[0] -= vcpus
            left[1] -= memory_mb
    return before, {host: (left[0], left[1]) for host, left in after.items()}


def _leave(names: Sequence[str]) -> str:
    return f"{', '.join(names)} {'leaves' if len(names) == 1 else 'leave'}"


def _shortfall(room: Sequence[float]) -> str:
    parts = [f"{-r:g} {unit}" for r, unit in zip(room, _UNITS, strict=True) if r < -_EPSILON]
    return " and ".join(parts)


# --- a safe sequential order ---------------------------------------------


@dataclass
class _Progress:
    """Where a sequential run of the moves has got to: which are done, in what
    order, and the free room each host has left."""

    moves: Sequence[Move]
    sizes: Sequence[Amounts]
    blockers: Sequence[frozenset[int]]
    room: dict[str, list[float]]
    done: frozenset[int] = frozenset()
    order: list[int] = field(default_factory=list)
    outgoing: dict[str, int] = field(default_factory=dict)

    def copy(self) -> _Progress:
        return _Progress(
            self.moves,
            self.sizes,
            self.blockers,
            {h: list(r) for h, r in self.room.items()},
            self.done,
            list(self.order),
            dict(self.outgoing),
        )

    @property
    def complete(self) -> bool:
        return len(self.done) == len(self.moves)

    def fits(self, i: int) -> bool:
        room = self.room[self.moves[i].destination]
        return all(r + _EPSILON >= s for r, s in zip(room, self.sizes[i], strict=True))

    def feasible(self, i: int) -> bool:
        return i not in self.done and self.blockers[i] <= self.done and self.fits(i)

    def safe(self, i: int) -> bool:
        # A destination nothing will leave can take all its remaining arrivals in any
        # order (its end state fits), so moving there never costs another move its room.
        return self.outgoing.get(self.moves[i].destination, 0) == 0

    def apply(self, i: int) -> None:
        move, size = self.moves[i], self.sizes[i]
        dst, src = self.room[move.destination], self.room[move.source]
        for d in range(len(size)):
            dst[d] -= size[d]
            src[d] += size[d]
        self.outgoing[move.source] -= 1
        self.done = self.done | {i}
        self.order.append(i)

    def run_safe(self) -> None:
        # `feasible`, `safe` and `apply` inlined (the same tests and sums): this runs
        # for every plan, over every move, at least twice.
        moves, sizes, blockers = self.moves, self.sizes, self.blockers
        room, outgoing, order = self.room, self.outgoing, self.order
        done = set(self.done)
        progressed = True
        while progressed:
            progressed = False
            for i, move in enumerate(moves):
                if i in done or outgoing.get(move.destination, 0) != 0:
                    continue
                if not blockers[i] <= done:
                    continue
                # Room is two-dimensional (_UNITS): the test and sums spelled out.
                (cpu, memory), dst = sizes[i], room[move.destination]
                if not (dst[0] + _EPSILON >= cpu and dst[1] + _EPSILON >= memory):
                    continue
                src = room[move.source]
                dst[0] -= cpu
                src[0] += cpu
                dst[1] -= memory
                src[1] += memory
                outgoing[move.source] -= 1
                done.add(i)
                order.append(i)
                progressed = True
        self.done = frozenset(done)

    def candidates(self) -> list[int]:
        return [i for i in range(len(self.moves)) if self.feasible(i)]


def _sizes(moves: Sequence[Move], cluster: Cluster) -> list[Amounts]:
    return [usage(cluster.instances[m.instance]) for m in moves]


def _anti_affinity_blockers(moves: Sequence[Move], cluster: Cluster) -> list[frozenset[int]]:
    """For each move, the moves of its anti-affinity partners that must have left its
    destination first (a migrating VM is on both hosts until it finishes)."""
    if not cluster.groups:
        return [frozenset()] * len(moves)
    index: dict[str, int] = {}
    for i, m in enumerate(moves):
        index.setdefault(m.instance, i)
    blockers: list[frozenset[int]] = []
    for move in moves:
        instance = cluster.instances[move.instance]
        found: set[int] = set()
        for group in _policy_groups(instance, cluster, GroupPolicy.ANTI_AFFINITY):
            for name, other in cluster.instances.items():
                partner = name != move.instance and group in other.groups
                if partner and other.host == move.destination and name in index:
                    found.add(index[name])
        blockers.append(frozenset(found))
    return blockers


def _find_order(
    moves: Sequence[Move],
    cluster: Cluster,
    initial: Mapping[str, Sequence[float]],
    chained: Mapping[int, int] | None = None,
) -> list[int]:
    """A sequence in which each move fits on arrival; safe moves are taken greedily,
    and a depth-first search with memory of dead ends handles moves that wait on
    each other (swaps that need slack elsewhere). `chained` maps the second leg of a
    temporary hop to its first leg, which must be done before it."""
    outgoing: dict[str, int] = {}
    for m in moves:
        outgoing[m.source] = outgoing.get(m.source, 0) + 1
    blockers = _anti_affinity_blockers(moves, cluster)
    for second, first in (chained or {}).items():
        blockers[second] = blockers[second] | {first}
    start = _Progress(
        moves,
        _sizes(moves, cluster),
        blockers,
        {h: list(r) for h, r in initial.items()},
        outgoing=outgoing,
    )
    start.run_safe()
    if start.complete:
        return start.order
    stuck = start
    dead_ends: set[frozenset[int]] = set()
    stack: list[tuple[_Progress, Iterator[int]]] = [(start, iter(start.candidates()))]
    budget = _SEARCH_BUDGET
    while stack and budget > 0:
        progress, choices = stack[-1]
        choice = next(choices, None)
        if choice is None:
            dead_ends.add(progress.done)
            stack.pop()
            continue
        budget -= 1
        child = progress.copy()
        child.apply(choice)
        child.run_safe()
        if child.complete:
            return child.order
        if child.done in dead_ends:
            continue
        if len(child.done) > len(stuck.done):
            stuck = child
        stack.append((child, iter(child.candidates())))
    raise _no_order(stuck, exhausted=budget <= 0)


def _ordered_moves(
    moves: Sequence[Move],
    changes: Sequence[HostChange],
    cluster: Cluster,
    initial: Mapping[str, Sequence[float]],
) -> tuple[tuple[Move, ...], dict[int, int], list[int]]:
    """The moves in a safe order; when none exists, moves caught in a cycle are split
    into two legs through a temporary host, one hop at a time, for as long as that
    leaves fewer moves stuck. Returns the moves (legs included), which second legs
    follow which first legs, and the order."""
    try:
        return tuple(moves), {}, _find_order(moves, cluster, initial)
    except PlanningError as error:
        first = error
    current, chained, stuck = list(moves), dict[int, int](), first.moves
    tried_hosts: set[str] = set()
    for _ in range(min(len(moves), _MAX_HOPS)):
        best: tuple[list[Move], dict[int, int], tuple[str, ...]] | None = None
        hopped = {current[i].instance for i in chained.values()}
        for name in stuck[:_MAX_HOP_CANDIDATES]:
            if name in hopped:
                continue
            i = next(k for k, m in enumerate(current) if m.instance == name)
            for temp in _hop_hosts(current[i], changes, cluster, initial):
                tried_hosts.add(temp)
                trial, trial_chained = _split(current, chained, i, temp)
                try:
                    return (
                        tuple(trial),
                        trial_chained,
                        _find_order(trial, cluster, initial, trial_chained),
                    )
                except PlanningError as error:
                    if best is None or len(error.moves) < len(best[2]):
                        best = (trial, trial_chained, error.moves)
        if best is None or len(best[2]) >= len(stuck):
            break
        current, chained, stuck = best
    why = (
        f"a temporary stop on {', '.join(sorted(tried_hosts))} does not help either"
        if tried_hosts
        else "no temporary stop is possible: no other enabled host outside the plan's "
        "host changes has room for one of them (and server-group members never hop)"
    )
    raise PlanningError(f"{first.problem}; {why}", moves=first.moves)


def _hop_hosts(
    move: Move,
    changes: Sequence[HostChange],
    cluster: Cluster,
    room: Mapping[str, Sequence[float]],
) -> list[str]:
    """Hosts that may hold `move`'s instance for a while: enabled, untouched by host
    changes, not an end of the move, big enough; the roomiest first."""
    instance = cluster.instances[move.instance]
    if any(_policy_groups(instance, cluster, p) for p in _HARD_POLICIES):
        return []
    changed = {c.host for c in changes}
    size = usage(instance)
    found: list[tuple[float, str]] = []
    for name, host in cluster.hosts.items():
        if name in (move.source, move.destination) or name in changed:
            continue
        if host.state != HostState.ENABLED:
            continue
        if any(c < s - _EPSILON for c, s in zip(capacity(host), size, strict=True)):
            continue
        spare = min(r / max(s, 1.0) for r, s in zip(room[name], size, strict=True))
        found.append((-spare, name))
    return [name for _, name in sorted(found)[:_MAX_HOP_HOSTS]]


def _split(
    moves: Sequence[Move], chained: Mapping[int, int], i: int, temp: str
) -> tuple[list[Move], dict[int, int]]:
    move = moves[i]
    first = Move(
        move.instance,
        move.source,
        temp,
        move.live,
        reason=f"move {move.instance} to {temp} for a while, to break a cycle of moves",
    )
    second = Move(
        move.instance,
        temp,
        move.destination,
        move.live,
        reason=(move.reason or f"move {move.instance} to {move.destination}")
        + f" (second leg, from its temporary stop on {temp})",
    )
    result = list(moves)
    result[i] = first
    result.append(second)
    return result, {**chained, len(result) - 1: i}


def _no_order(progress: _Progress, *, exhausted: bool) -> PlanningError:
    waiting = [i for i in range(len(progress.moves)) if i not in progress.done]
    reasons: list[str] = []
    for i in waiting:
        move = progress.moves[i]
        blocked_by = [progress.moves[b].instance for b in progress.blockers[i] - progress.done]
        if blocked_by:
            reasons.append(
                f"{_describe(move)} waits for anti-affinity partner(s) "
                f"{', '.join(blocked_by)} to leave {move.destination}"
            )
            continue
        room = progress.room[move.destination]
        need = progress.sizes[i]
        leaving = [
            progress.moves[j].instance
            for j in waiting
            if j != i and progress.moves[j].source == move.destination
        ]
        short = _shortfall([r - n for r, n in zip(room, need, strict=True)])
        if short:
            reasons.append(
                f"{_describe(move)} lacks {short} on {move.destination} until "
                + (_leave(leaving) if leaving else "room is freed")
            )
        else:
            reasons.append(f"{_describe(move)} could start but no complete order was found")
    head = (
        "no safe order found within the search budget"
        if exhausted
        else "no order of the moves keeps every host within capacity and policy"
    )
    return PlanningError(
        f"{head}: {'; '.join(reasons)}",
        moves=tuple(progress.moves[i].instance for i in waiting),
    )


# --- the dependency graph --------------------------------------------------


class _Node:
    __slots__ = ("kind", "parameters", "parents", "rank", "reason")

    def __init__(
        self, kind: ActionType, parameters: dict[str, object], reason: str, rank: int
    ) -> None:
        self.kind = kind
        self.parameters = parameters
        self.reason = reason
        self.rank = rank
        self.parents: dict[int, str] = {}


class _Graph:
    """Nodes 0..n-1 are the moves, then the host changes; parents carry why."""

    def __init__(self) -> None:
        self.nodes: list[_Node] = []

    def add(self, node: _Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def link(self, child: int, parent: int, why: str) -> None:
        if child != parent and parent not in self.nodes[child].parents:
            self.nodes[child].parents[parent] = why

    def actions(self) -> tuple[Action, ...]:
        order = _topological(self.nodes)
        ids = new_ids(len(self.nodes))
        result: list[Action] = []
        pending = ActionState.PENDING
        for index in order:
            node = self.nodes[index]
            parents = node.parents
            explanation = node.reason
            if parents:
                waits = [why for why in parents.values() if why]
                if waits:
                    explanation += f" (after {'; '.join(waits)})"
            # Every field given in order: the constructor then fills no defaults.
            result.append(
                Action(
                    node.kind,
                    node.parameters,
                    tuple([ids[p] for p in parents]) if parents else (),
                    pending,
                    "",
                    explanation,
                    None,
                    None,
                    "",
                    ids[index],
                )
            )
        return tuple(result)


def _topological(nodes: Sequence[_Node]) -> list[int]:
    """The nodes in dependency order, the lowest (rank, index) first among the ready."""
    if any(n.parents for n in nodes):
        return _heap_order(nodes)
    # Everything is ready at once: the heap would pop them by (rank, index).
    ranks = sorted([(n.rank, i) for i, n in enumerate(nodes)])
    return [i for _, i in ranks]


def _heap_order(nodes: Sequence[_Node]) -> list[int]:
    children: dict[int, list[int]] = {i: [] for i in range(len(nodes))}
    waiting = [len(n.parents) for n in nodes]
    for i, node in enumerate(nodes):
        for p in node.parents:
            children[p].append(i)
    ready = [(nodes[i].rank, i) for i in range(len(nodes)) if waiting[i] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        _, i = heapq.heappop(ready)
        order.append(i)
        for c in children[i]:
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(ready, (nodes[c].rank, c))
    if len(order) < len(nodes):
        raise _cycle_error(nodes, [i for i in range(len(nodes)) if waiting[i] > 0])
    return order


def _cycle_error(nodes: Sequence[_Node], left: Sequence[int]) -> PlanningError:
    remaining = set(left)
    # Walk parents inside the unresolved set until a node repeats: that is a cycle.
    path: list[int] = []
    seen: dict[int, int] = {}
    current = left[0]
    while current not in seen:
        seen[current] = len(path)
        path.append(current)
        current = next(p for p in nodes[current].parents if p in remaining)
    cycle = path[seen[current] :]
    steps = [
        f"{_node_label(nodes[i])} needs {_node_label(nodes[p])} first: "
        f"{nodes[i].parents[p] or 'ordered after it'}"
        for i, p in zip(cycle, cycle[1:] + cycle[:1], strict=True)
    ]
    names = tuple(
        str(nodes[i].parameters["instance"]) for i in cycle if "instance" in nodes[i].parameters
    )
    return PlanningError("the plan's order is circular: " + "; ".join(steps), moves=names)


def _node_label(node: _Node) -> str:
    p = node.parameters
    if node.kind == ActionType.MIGRATE:
        return f"migrate {p['instance']} ({p['source']}→{p['destination']})"
    return f"{p['node']}→{p['state']}"


def _link_moves(
    graph: _Graph,
    order: Sequence[int],
    moves: Sequence[Move],
    cluster: Cluster,
    chained: Mapping[int, int],
    initial: Mapping[str, Sequence[float]],
) -> None:
    """Create the move nodes and their parents by a ledger of room: each arrival takes
    room that was free from the start or freed by specific departures, and depends on
    exactly those departures. Room is never handed out twice, so any set of moves that
    may run together fits, whatever order they finish in."""
    rank = [0] * len(moves)
    for position, i in enumerate(order):
        rank[i] = position
    instances = cluster.instances
    nodes = graph.nodes
    sizes: list[Amounts] = []
    # `usage` of an instance depends on its flavor only, and a plan has few.
    by_flavor: dict[int, Amounts] = {}
    for i, move in enumerate(moves):
        name, source, destination = move.instance, move.source, move.destination
        flavor = instances[name].flavor
        size = by_flavor.get(id(flavor))
        if size is None:
            size = by_flavor[id(flavor)] = (float(flavor.vcpus), float(flavor.memory_mb))
        sizes.append(size)
        nodes.append(
            _Node(
                ActionType.MIGRATE,
                {
                    "instance": name,
                    "source": source,
                    "destination": destination,
                    "live": move.live,
                    "memory_mb": flavor.memory_mb,
                    "vcpus": flavor.vcpus,
                },
                move.reason or f"move {name} from {source} to {destination}",
                1_000_000 + rank[i],
            )
        )

    # Per host, per dimension, chunks of room as [owner, amount]: freed by move `owner`
    # (None: free from the start). A chunk left with no room (at most _EPSILON) is
    # inert: it can give nothing, so nobody comes to depend on its owner through it.
    chunks: dict[str, tuple[list[list[Any]], list[list[Any]]]] = {}
    debt: dict[str, list[float]] = {}
    debt_payers: dict[str, tuple[set[int], set[int]]] = {}
    # Only the hosts moves leave or reach have a ledger; the rest are never read.
    for move in moves:
        for host in (move.source, move.destination):
            if host in chunks:
                continue
            # Room is two-dimensional (_UNITS): spelled out, it costs a third of the
            # comprehensions over it, for the same lists.
            cpu, memory = initial[host]
            chunks[host] = (
                [[None, cpu]] if cpu > _EPSILON else [],
                [[None, memory]] if memory > _EPSILON else [],
            )
            debt[host] = [-cpu if cpu < 0 else 0.0, -memory if memory < 0 else 0.0]
            debt_payers[host] = (set(), set())

    blockers = _anti_affinity_blockers(moves, cluster) if cluster.groups else None
    for i in order:
        move = moves[i]
        if chained and i in chained:
            graph.link(i, chained[i], f"{move.instance} has reached {move.source}")
        if blockers is not None:
            for b in blockers[i]:
                graph.link(
                    i, b, f"anti-affinity partner {moves[b].instance} leaves {move.destination}"
                )
        # The two dimensions (_UNITS) in turn; `freed_by` is made only when a
        # departure gives room, which most arrivals never need.
        freed_by: dict[int, list[str]] | None = None
        size = sizes[i]
        arrival_chunks, arrival_payers = chunks[move.destination], debt_payers[move.destination]
        for d in (0, 1):
            need = size[d]
            payers = arrival_payers[d]
            if payers:
                if freed_by is None:
                    freed_by = {}
                for payer in payers:
                    freed_by.setdefault(payer, []).append(_UNITS[d])
            free = arrival_chunks[d]
            for chunk in free:
                if need <= _EPSILON:
                    break
                taken = min(chunk[1], need)
                if taken <= _EPSILON:
                    continue
                chunk[1] -= taken
                need -= taken
                if chunk[0] is not None:
                    if freed_by is None:
                        freed_by = {}
                    freed_by.setdefault(chunk[0], []).append(_UNITS[d])
            # Chunks are drawn from the front, so the spent ones gather there.
            while free and free[0][1] <= _EPSILON:
                del free[0]
        if freed_by is not None:
            for owner, units in freed_by.items():
                graph.link(
                    i,
                    owner,
                    f"{moves[owner].instance} frees {' and '.join(dict.fromkeys(units))} "
                    f"on {move.destination}",
                )
        source = move.source
        left_chunks, left_debt = chunks[source], debt[source]
        for d in (0, 1):
            amount = size[d]
            paid = min(left_debt[d], amount)
            if paid > 0:
                left_debt[d] -= paid
                debt_payers[source][d].add(i)
            if amount - paid > _EPSILON:
                left_chunks[d].append([i, amount - paid])


def _link_host_changes(
    graph: _Graph, moves: Sequence[Move], changes: Sequence[HostChange], cluster: Cluster
) -> None:
    """Disable or maintenance before draining a host, enable before anything lands on
    it, power on (leaving OFF) before anything lands on it, power off after everything
    has left it; changes of one host keep their order. Entering or leaving OFF is a
    power action, any other change a change_node_state."""
    last_of_host: dict[str, int] = {}
    state_of = {name: h.state for name, h in cluster.hosts.items()}
    arriving: dict[str, list[int]] = {}
    leaving: dict[str, list[int]] = {}
    for i, move in enumerate(moves):
        arriving.setdefault(move.destination, []).append(i)
        leaving.setdefault(move.source, []).append(i)
    for position, change in enumerate(changes):
        was = state_of[change.host]
        state_of[change.host] = change.state
        parameters: dict[str, object] = {
            "node": change.host,
            "state": change.state.value,
            "reason": change.reason,
        }
        kind = ActionType.CHANGE_NODE_STATE
        powering_on = was == HostState.OFF and change.state != HostState.OFF
        if change.state == HostState.OFF or powering_on:
            kind = ActionType.POWER
            parameters["power"] = "off" if change.state == HostState.OFF else "on"
        # Power-offs sort last among ready actions; other changes first.
        rank = 2_000_000 + position if change.state == HostState.OFF else position
        node = graph.add(
            _Node(
                kind=kind,
                parameters=parameters,
                reason=change.reason or _change_reason(change, powering_on),
                rank=rank,
            )
        )
        previous = last_of_host.get(change.host)
        if previous is not None:
            graph.link(
                node,
                previous,
                f"{change.host} goes {changes[previous - len(moves)].state.value} first",
            )
        last_of_host[change.host] = node
        # Only moves leaving or reaching the host can match below, in index order.
        for i in sorted({*arriving.get(change.host, ()), *leaving.get(change.host, ())}):
            move = moves[i]
            if powering_on and move.destination == change.host:
                graph.link(i, node, f"{change.host} is powered on")
            elif change.state == HostState.ENABLED and move.destination == change.host:
                graph.link(i, node, f"{change.host} is enabled")
            elif change.state in _DRAINING_STATES and move.source == change.host:
                graph.link(i, node, f"{change.host} stops taking new instances")
            elif change.state == HostState.OFF and move.source == change.host:
                graph.link(node, i, f"{move.instance} has left {change.host}")


def _change_reason(change: HostChange, powering_on: bool) -> str:
    if powering_on:
        return f"power on {change.host} ({change.state.value})"
    if change.state == HostState.OFF:
        return f"power off {change.host}"
    return f"put {change.host} in state {change.state.value}"
