"""Invariants of build_plan on random small clusters and valid targets: the plan is a
DAG holding each move once, and no state reachable by running ready actions at once
(a migrating VM counted on both hosts) breaks capacity or anti-affinity."""

from __future__ import annotations

import itertools
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes.scenarios import GROUP, Scenario, scenarios
from opendrs.domain.action import Action, ActionPlan, ActionType, PlanLimits, PlanState
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import PlanningError
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Flavor, Instance
from opendrs.domain.solution import Move, Solution
from opendrs.planner import build_plan, capacity, usage

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)


def ancestors(plan: ActionPlan) -> dict[str, frozenset[str]]:
    by_id = {a.id: a for a in plan.actions}

    @cache
    def of(action_id: str) -> frozenset[str]:
        found: set[str] = set()
        for p in by_id[action_id].parents:
            found |= {p} | of(p)
        return frozenset(found)

    return {a.id: of(a.id) for a in plan.actions}


def migrations(plan: ActionPlan) -> list[Action]:
    return [a for a in plan.actions if a.type == ActionType.MIGRATE]


def sequential_order_exists(scenario: Scenario) -> bool:
    """Brute force: is there any one-at-a-time order in which each move fits on arrival
    and never meets an anti-affinity partner still on (or leaving) its destination?"""
    cluster = scenario.cluster
    moves = scenario.solution.moves

    @cache
    def reach(done: frozenset[int]) -> bool:
        if len(done) == len(moves):
            return True
        where = {n: i.host for n, i in cluster.instances.items()}
        for i in done:
            where[moves[i].instance] = moves[i].destination
        for i, m in enumerate(moves):
            if i in done:
                continue
            room = list(capacity(cluster.hosts[m.destination]))
            for name, host in where.items():
                if host == m.destination:
                    for d, amount in enumerate(usage(cluster.instances[name])):
                        room[d] -= amount
            need = usage(cluster.instances[m.instance])
            if any(r < n for r, n in zip(room, need, strict=True)):
                continue
            if GROUP in cluster.instances[m.instance].groups and any(
                GROUP in cluster.instances[n].groups and h == m.destination
                for n, h in where.items()
                if n != m.instance
            ):
                continue
            if reach(done | {i}):
                return True
        return False

    return reach(frozenset())


def assert_capacity_in_every_reachable_state(plan: ActionPlan, cluster: Cluster) -> None:
    """For every host and every set I of arrivals, run I with only their ancestors
    finished: the worst reachable load of that host. Exact for small plans."""
    anc = ancestors(plan)
    moves = migrations(plan)
    for host_name, host in cluster.hosts.items():
        base = [0.0, 0.0]
        for instance in cluster.instances.values():
            if instance.host == host_name:
                for d, amount in enumerate(usage(instance)):
                    base[d] += amount
        cap = capacity(host)
        arriving = [m for m in moves if m.destination == host_name]
        for r in range(1, len(arriving) + 1):
            for chosen in itertools.combinations(arriving, r):
                finished = set().union(*(anc[m.id] for m in chosen))
                load = list(base)
                for m in moves:
                    size = usage(cluster.instances[str(m.instance)])
                    if m.destination == host_name and (m in chosen or m.id in finished):
                        load = [x + s for x, s in zip(load, size, strict=True)]
                    if m.source == host_name and m.id in finished:
                        load = [x - s for x, s in zip(load, size, strict=True)]
                if any(x > c + 1e-9 for x, c in zip(load, cap, strict=True)):
                    names = [m.instance for m in chosen]
                    raise AssertionError(f"{host_name} overloaded {load} > {cap} running {names}")


def assert_anti_affinity_in_every_reachable_state(plan: ActionPlan, cluster: Cluster) -> None:
    anc = ancestors(plan)
    members = {n for n, i in cluster.instances.items() if GROUP in i.groups}
    moving = {str(m.instance): m for m in migrations(plan)}
    for m in migrations(plan):
        if m.instance not in members:
            continue
        # While m runs, every partner that starts on its destination must have left.
        for partner in members - {m.instance}:
            if cluster.instances[partner].host != m.destination:
                continue
            leaving = moving.get(partner)
            assert leaving is not None and leaving.id in anc[m.id], (
                f"{m.instance} may land on {m.destination} while {partner} is there"
            )


def assert_legs_compose_to_the_moves(plan: ActionPlan, scenario: Scenario) -> None:
    """Each move is planned once, or as two legs through a temporary host where the
    second leg depends on the first."""
    anc = ancestors(plan)
    by_instance: dict[str, list[Action]] = {}
    for a in migrations(plan):
        by_instance.setdefault(str(a.instance), []).append(a)
    wanted = {m.instance: (m.source, m.destination) for m in scenario.solution.moves}
    assert set(by_instance) == set(wanted)
    for name, planned in by_instance.items():
        source, destination = wanted[name]
        if len(planned) == 1:
            assert (planned[0].source, planned[0].destination) == (source, destination)
            continue
        assert len(planned) == 2
        first, second = planned if planned[0].id in anc[planned[1].id] else planned[::-1]
        assert first.id in anc[second.id]
        assert (first.source, first.destination, second.destination) == (
            source,
            second.source,
            destination,
        )
        assert not scenario.cluster.instances[name].groups


def assert_host_changes_in_place(plan: ActionPlan) -> None:
    anc = ancestors(plan)
    for change in plan.actions:
        if change.type not in (ActionType.CHANGE_NODE_STATE, ActionType.POWER):
            continue
        node, state = change.parameters["node"], change.parameters["state"]
        is_power = change.type == ActionType.POWER
        assert is_power == (state == HostState.OFF.value or change.parameters.get("power") == "on")
        for m in migrations(plan):
            if change.parameters.get("power") == "on" and m.destination == node:
                assert change.id in anc[m.id], f"{m.instance} may land before {node} is on"
            if state == HostState.ENABLED.value and m.destination == node:
                assert change.id in anc[m.id], f"{m.instance} may land before {node} is enabled"
            if state == HostState.MAINTENANCE.value and m.source == node:
                assert change.id in anc[m.id], f"{m.instance} leaves before {node} is drained"
            if state == HostState.OFF.value and m.source == node:
                assert m.id in anc[change.id], f"{node} may power off before {m.instance} left"


@SETTINGS
@given(scenarios())
def test_plan_is_a_safe_dag_holding_each_move_once(scenario: Scenario) -> None:
    try:
        plan = build_plan(scenario.solution, scenario.cluster, PlanLimits(), "audit", 1.0)
    except PlanningError as error:
        # Only when no order exists at all; anything else is a planner bug.
        assert not sequential_order_exists(scenario), f"planner gave up wrongly: {error}"
        assert error.moves
        return
    hops = len(migrations(plan)) - len(scenario.solution.moves)
    # A plan without temporary stops is a sequential order of the moves themselves.
    assert hops > 0 or sequential_order_exists(scenario)

    if scenario.solution.empty:
        assert plan.state == PlanState.SUCCEEDED and plan.actions == ()
        return
    seen: set[str] = set()
    for action in plan.actions:
        assert set(action.parents) <= seen, "actions are listed after their parents"
        seen.add(action.id)
    assert_legs_compose_to_the_moves(plan, scenario)
    assert len(plan.actions) == len({a.id for a in plan.actions})
    assert len(plan.actions) == (
        len(scenario.solution.moves) + hops + len(scenario.solution.host_changes)
    )
    assert plan.efficacy == {"x": 1.0}
    assert all(a.explanation for a in plan.actions)
    assert_capacity_in_every_reachable_state(plan, scenario.cluster)
    assert_anti_affinity_in_every_reachable_state(plan, scenario.cluster)
    assert_host_changes_in_place(plan)


@SETTINGS
@given(scenarios(host_changes=False))
def test_moves_onto_roomy_hosts_have_no_parents(scenario: Scenario) -> None:
    """Parents only where safety needs them: a move onto a host that has room from the
    start for everything arriving there waits for nothing, so it runs in parallel."""
    try:
        plan = build_plan(scenario.solution, scenario.cluster, PlanLimits(), "audit", 1.0)
    except PlanningError:
        return
    if scenario.solution.empty:
        return
    cluster = scenario.cluster
    for m in migrations(plan):
        host = str(m.destination)
        cap = capacity(cluster.hosts[host])
        load = [0.0, 0.0]
        for instance in cluster.instances.values():
            if instance.host == host:
                load = [x + s for x, s in zip(load, usage(instance), strict=True)]
        for other in migrations(plan):
            if other.destination == host:
                size = usage(cluster.instances[str(other.instance)])
                load = [x + s for x, s in zip(load, size, strict=True)]
        spread = GROUP in cluster.instances[str(m.instance)].groups
        if all(x <= c for x, c in zip(load, cap, strict=True)) and not spread:
            assert m.parents == (), f"{m.instance} waits although {host} has room for all"


@st.composite
def rotations(draw: st.DrawFn) -> Scenario:
    """Full hosts whose VMs rotate among them (no sequential order exists), plus
    spare hosts that may or may not be big enough for a temporary stop."""
    n_full = draw(st.integers(2, 4))
    hosts = [Host(name=f"f{i}", vcpus=2, memory_mb=2048) for i in range(n_full)]
    spares = draw(st.lists(st.sampled_from([1, 2, 4]), max_size=2))
    hosts += [Host(name=f"s{i}", vcpus=v, memory_mb=1024 * v) for i, v in enumerate(spares)]
    instances = [Instance(f"vm{i}", f"f{i}", Flavor("f", 2, 2048)) for i in range(n_full)]
    shift = draw(st.integers(1, n_full - 1))
    target = {f"vm{i}": f"f{(i + shift) % n_full}" for i in range(n_full)}
    moves = tuple(Move(f"vm{i}", f"f{i}", target[f"vm{i}"]) for i in range(n_full))
    return Scenario(Cluster.of(hosts, instances), target, Solution(moves=moves))


@SETTINGS
@given(rotations())
def test_rotations_hop_through_a_spare_host_or_say_why(scenario: Scenario) -> None:
    roomy = any(h.vcpus >= 2 for h in scenario.cluster.hosts.values() if h.name[0] == "s")
    try:
        plan = build_plan(scenario.solution, scenario.cluster, PlanLimits(), "audit", 1.0)
    except PlanningError as error:
        assert not roomy, f"a spare host had room: {error}"
        assert "temporary stop" in str(error)
        return
    assert roomy
    assert_legs_compose_to_the_moves(plan, scenario)
    assert_capacity_in_every_reachable_state(plan, scenario.cluster)
