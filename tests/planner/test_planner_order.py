"""build_plan on hand-made situations: which move waits for which, host state changes
in their place, and the errors for targets or orders that cannot be made safe."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fakes.clusters import cluster, host, off, vm
from opendrs.domain.action import ActionPlan, ActionType, PlanLimits, PlanState
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidInput, PlanningError
from opendrs.domain.host import HostState
from opendrs.domain.instance import GroupPolicy
from opendrs.domain.solution import HostChange, Move, Solution
from opendrs.planner import build_plan, capacity

LIMITS = PlanLimits()


def plan_for(c: Cluster, *moves: Move, changes: tuple[HostChange, ...] = ()) -> ActionPlan:
    return build_plan(Solution(moves=moves, host_changes=changes), c, LIMITS, "audit-1", 5.0)


def label(plan: ActionPlan, action_id: str) -> str:
    a = plan.action(action_id)
    if a.type == ActionType.MIGRATE:
        return str(a.instance)
    return f"{a.parameters['node']}:{a.parameters['state']}"


def parents(plan: ActionPlan) -> dict[str, set[str]]:
    return {label(plan, a.id): {label(plan, p) for p in a.parents} for a in plan.actions}


def test_independent_moves_have_no_parents_and_carry_reasons_and_limits() -> None:
    c = cluster([host("a"), host("b"), host("c")], [vm("x", "a"), vm("y", "a"), vm("z", "b")])
    limits = PlanLimits(max_per_source=1, max_per_destination=3, max_parallel=4)
    solution = Solution(
        moves=(Move("x", "a", "c", reason="a is hot"), Move("z", "b", "c", live=False)),
        efficacy={"released_nodes": 1.0},
        explanations=("relieve a",),
    )
    plan = build_plan(solution, c, limits, "audit-9", 42.0)

    assert parents(plan) == {"x": set(), "z": set()}
    assert plan.state == PlanState.RECOMMENDED
    assert (plan.audit_id, plan.created_at, plan.limits) == ("audit-9", 42.0, limits)
    assert plan.efficacy == {"released_nodes": 1.0}
    assert plan.message == "relieve a"
    x, z = plan.actions
    assert x.explanation == "a is hot"
    assert dict(x.parameters) == {
        "instance": "x",
        "source": "a",
        "destination": "c",
        "live": True,
        "memory_mb": 2048,
        "vcpus": 2,
    }
    assert z.parameters["live"] is False
    assert "move z from b to c" in z.explanation


def test_a_move_waits_for_the_move_that_frees_its_room() -> None:
    c = cluster(
        [host("a", 4), host("b", 4), host("c", 2)],
        [vm("x", "a"), vm("y", "b"), vm("w", "b")],
    )
    plan = plan_for(c, Move("x", "a", "b"), Move("y", "b", "c"))
    assert parents(plan) == {"y": set(), "x": {"y"}}
    assert [a.instance for a in plan.actions] == ["y", "x"]
    assert plan.actions[1].explanation == "move x from a to b (after y frees vCPU on b)"


def test_a_chain_of_moves_is_ordered_end_first() -> None:
    c = cluster(
        [host("a", 2), host("b", 2), host("c", 2), host("d", 2)],
        [vm("p", "a"), vm("q", "b"), vm("r", "c")],
    )
    plan = plan_for(c, Move("p", "a", "b"), Move("q", "b", "c"), Move("r", "c", "d"))
    assert parents(plan) == {"r": set(), "q": {"r"}, "p": {"q"}}


def test_only_the_dimension_that_is_short_creates_a_parent() -> None:
    # b has CPU to spare but not RAM: x needs y gone for its memory only.
    c = cluster(
        [host("a"), host("b", vcpus=16, memory_mb=4096), host("c")],
        [vm("x", "a"), vm("y", "b"), vm("w", "b")],
    )
    plan = plan_for(c, Move("x", "a", "b"), Move("y", "b", "c"))
    assert parents(plan) == {"y": set(), "x": {"y"}}
    assert "y frees MB RAM on b" in plan.action(plan.actions[-1].id).explanation


def test_allocation_ratio_and_reserved_resources_set_the_room() -> None:
    roomy = host("b", 4, cpu_allocation_ratio=2.0)
    assert capacity(roomy) == (8.0, 8192.0)
    c = cluster([host("a"), roomy, host("c")], [vm("x", "a"), vm("y", "b"), vm("w", "b")])
    assert parents(plan_for(c, Move("x", "a", "b"), Move("y", "b", "c")))["x"] == set()

    # Placement's rule: (total - reserved) × allocation ratio.
    reserved = replace(roomy, reserved_host_cpus=2, reserved_host_memory_mb=1024)
    assert capacity(reserved) == (4.0, 7168.0)
    c = cluster([host("a"), reserved, host("c")], [vm("x", "a"), vm("y", "b"), vm("w", "b")])
    assert parents(plan_for(c, Move("x", "a", "b"), Move("y", "b", "c")))["x"] == {"y"}


def test_an_overfull_destination_must_shed_its_excess_before_taking_more() -> None:
    # b holds 6 vCPU in a 4 vCPU capacity: x may land only once y and z are both gone.
    c = cluster(
        [host("a"), host("b", 4, 16384), host("c", 16)],
        [vm("x", "a"), vm("y", "b"), vm("z", "b"), vm("w", "b")],
    )
    plan = plan_for(c, Move("x", "a", "b"), Move("y", "b", "c"), Move("z", "b", "c"))
    assert parents(plan)["x"] == {"y", "z"}


def test_moves_waiting_on_each_other_are_found_by_search() -> None:
    # d has room for one arrival; f→d and e→d compete for it, and only e→d first lets
    # d→e free the room f→d needs. A greedy pick of f→d would get stuck.
    c = cluster(
        [host("d", 2, 65536), host("e", 1, 65536), host("f", 4, 65536)],
        [vm("y", "d", 1), vm("x", "e", 1), vm("m", "f", 1)],
    )
    plan = plan_for(c, Move("m", "f", "d"), Move("x", "e", "d"), Move("y", "d", "e"))
    assert parents(plan) == {"x": set(), "y": {"x"}, "m": {"y"}}


def test_a_swap_between_full_hosts_is_impossible_and_names_both_moves() -> None:
    c = cluster([host("a", 2, 2048), host("b", 2, 2048)], [vm("x", "a"), vm("y", "b")])
    with pytest.raises(PlanningError) as caught:
        plan_for(c, Move("x", "a", "b"), Move("y", "b", "a"))
    assert set(caught.value.moves) == {"x", "y"}
    message = str(caught.value)
    assert "x (a→b) lacks 2 vCPU and 2048 MB RAM on b until y leaves" in message
    assert "y (b→a) lacks" in message


def test_a_target_over_capacity_is_refused() -> None:
    c = cluster([host("a"), host("b", 2)], [vm("x", "a"), vm("y", "b")])
    with pytest.raises(PlanningError, match="b would be over capacity after the plan by 2 vCPU"):
        plan_for(c, Move("x", "a", "b"))


def test_draining_a_host_disables_it_first_and_powers_it_off_last() -> None:
    c = cluster([host("a"), host("b"), host("c")], [vm("x", "a"), vm("y", "a"), vm("z", "b")])
    plan = plan_for(
        c,
        Move("x", "a", "b"),
        Move("y", "a", "c"),
        changes=(
            HostChange("a", HostState.MAINTENANCE, "drain a"),
            HostChange("a", HostState.OFF, "save power"),
        ),
    )
    assert parents(plan) == {
        "a:maintenance": set(),
        "x": {"a:maintenance"},
        "y": {"a:maintenance"},
        "a:off": {"a:maintenance", "x", "y"},
    }
    assert label(plan, plan.actions[0].id) == "a:maintenance"
    assert label(plan, plan.actions[-1].id) == "a:off"
    assert plan.actions[-1].type == ActionType.POWER
    assert plan.actions[-1].parameters == {
        "node": "a",
        "state": "off",
        "power": "off",
        "reason": "save power",
    }
    assert plan.actions[0].type == ActionType.CHANGE_NODE_STATE


def test_a_host_is_enabled_before_anything_lands_on_it() -> None:
    c = cluster([host("a"), off("b")], [vm("x", "a")])
    plan = plan_for(c, Move("x", "a", "b"), changes=(HostChange("b", HostState.ENABLED),))
    assert parents(plan) == {"b:enabled": set(), "x": {"b:enabled"}}
    # b was off: enabling it is powering it on.
    assert plan.actions[0].type == ActionType.POWER
    assert plan.actions[0].parameters["power"] == "on"
    assert "after b is powered on" in plan.actions[1].explanation


@pytest.mark.parametrize(
    ("hosts", "changes", "problem"),
    [
        ([host("a"), off("b")], (), "destination b ends the plan off"),
        (
            [host("a"), host("b", state=HostState.DISABLED)],
            (),
            "destination b ends the plan disabled",
        ),
        (
            [host("a"), host("b")],
            (HostChange("b", HostState.MAINTENANCE),),
            "destination b ends the plan maintenance",
        ),
    ],
)
def test_moves_only_land_on_hosts_that_end_enabled(
    hosts: list, changes: tuple[HostChange, ...], problem: str
) -> None:
    c = cluster(hosts, [vm("x", "a")])
    with pytest.raises(PlanningError, match=problem):
        plan_for(c, Move("x", "a", "b"), changes=changes)


def test_powering_off_a_host_that_keeps_instances_is_refused() -> None:
    c = cluster([host("a"), host("b")], [vm("x", "a"), vm("y", "a")])
    with pytest.raises(PlanningError, match="powering off a would stop y"):
        plan_for(c, Move("x", "a", "b"), changes=(HostChange("a", HostState.OFF),))


def test_anti_affinity_partner_leaves_before_the_other_arrives() -> None:
    c = cluster(
        [host("a"), host("b"), host("c")],
        [vm("x", "a", groups=("g",)), vm("y", "b", groups=("g",))],
        {"g": GroupPolicy.ANTI_AFFINITY},
    )
    plan = plan_for(c, Move("x", "a", "b"), Move("y", "b", "c"))
    assert parents(plan) == {"y": set(), "x": {"y"}}
    assert "anti-affinity partner y leaves b" in plan.actions[1].explanation


def test_soft_policies_do_not_order_moves() -> None:
    c = cluster(
        [host("a"), host("b"), host("c")],
        [vm("x", "a", groups=("g",)), vm("y", "b", groups=("g",))],
        {"g": GroupPolicy.SOFT_ANTI_AFFINITY},
    )
    assert parents(plan_for(c, Move("x", "a", "b"), Move("y", "b", "c"))) == {
        "x": set(),
        "y": set(),
    }


def test_anti_affinity_swap_and_sharing_are_refused() -> None:
    groups = {"g": GroupPolicy.ANTI_AFFINITY}
    c = cluster(
        [host("a"), host("b"), host("c")],
        [vm("x", "a", groups=("g",)), vm("y", "b", groups=("g",))],
        groups,
    )
    with pytest.raises(PlanningError, match="waits for anti-affinity partner"):
        plan_for(c, Move("x", "a", "b"), Move("y", "b", "a"))
    with pytest.raises(PlanningError, match="breaks anti-affinity group g: y would share b"):
        plan_for(c, Move("x", "a", "b"))


def test_splitting_an_affinity_group_is_refused_but_moving_it_whole_is_not() -> None:
    c = cluster(
        [host("a"), host("b")],
        [vm("x", "a", groups=("g",)), vm("y", "a", groups=("g",))],
        {"g": GroupPolicy.AFFINITY},
    )
    with pytest.raises(PlanningError, match="splits affinity group g"):
        plan_for(c, Move("x", "a", "b"))
    assert len(plan_for(c, Move("x", "a", "b"), Move("y", "a", "b")).actions) == 2


@pytest.mark.parametrize(
    ("move", "problem"),
    [
        (Move("ghost", "a", "b"), "the instance is not in the cluster"),
        (Move("x", "b", "a"), "the instance runs on 'a', not on the source"),
        (Move("x", "a", "a"), "source and destination are the same host"),
        (Move("x", "a", "zz"), "destination host 'zz' is not in the cluster"),
        (Move("x", "zz", "b"), "source host 'zz' is not in the cluster"),
        (Move("pinned", "a", "b"), "marked never_migrate"),
    ],
)
def test_bad_moves_are_named(move: Move, problem: str) -> None:
    pinned = replace(vm("pinned", "a"), metadata={"never_migrate": "true"})
    c = cluster([host("a"), host("b")], [vm("x", "a"), pinned])
    with pytest.raises(PlanningError, match=problem) as caught:
        plan_for(c, move)
    assert caught.value.moves == (move.instance,)


def test_moving_an_instance_twice_and_unknown_hosts_are_refused() -> None:
    c = cluster([host("a"), host("b"), host("c")], [vm("x", "a")])
    with pytest.raises(PlanningError, match="moved more than once"):
        plan_for(c, Move("x", "a", "b"), Move("x", "a", "c"))
    with pytest.raises(PlanningError, match="host change zz→off: host is not in the cluster"):
        plan_for(c, changes=(HostChange("zz", HostState.OFF),))


def test_an_empty_solution_is_a_succeeded_empty_plan() -> None:
    plan = build_plan(Solution(efficacy={"e": 0.0}), cluster([host("a")], []), LIMITS, "a", 1.0)
    assert plan.actions == ()
    assert plan.state == PlanState.SUCCEEDED
    assert plan.efficacy == {"e": 0.0}
    assert plan.message == "nothing to do"


def test_limits_must_be_positive_whole_numbers() -> None:
    with pytest.raises(InvalidInput, match="max_per_source"):
        PlanLimits(max_per_source=0)
    assert PlanLimits(3, 1, 9).tightest(PlanLimits(2, 2, 8)) == PlanLimits(2, 1, 8)


def test_a_cycle_through_a_power_cycle_is_reported() -> None:
    # y may land on a only after x left it; b powers off only after y left it and is
    # enabled again only after that; x may land on b only once b is enabled: a loop.
    c = cluster([host("a", 2), host("b", 4)], [vm("x", "a"), vm("y", "b")])
    with pytest.raises(PlanningError, match="circular") as caught:
        plan_for(
            c,
            Move("x", "a", "b"),
            Move("y", "b", "a"),
            changes=(HostChange("b", HostState.OFF), HostChange("b", HostState.ENABLED)),
        )
    assert set(caught.value.moves) == {"x", "y"}
