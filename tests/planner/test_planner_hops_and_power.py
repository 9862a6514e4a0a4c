"""Cycles of moves broken through a temporary host (or refused with why), and power
actions in their place: on before anything lands, off only once the host is empty."""

from __future__ import annotations

import pytest

from fakes.clusters import cluster, host, off, vm
from opendrs.domain.action import ActionPlan, ActionType, PlanLimits
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import PlanningError
from opendrs.domain.host import HostState
from opendrs.domain.instance import GroupPolicy
from opendrs.domain.solution import HostChange, Move, Solution
from opendrs.planner import build_plan


def plan_for(c: Cluster, *moves: Move, changes: tuple[HostChange, ...] = ()) -> ActionPlan:
    return build_plan(Solution(moves=moves, host_changes=changes), c, PlanLimits(), "a", 0.0)


def legs(plan: ActionPlan) -> list[tuple[str, str, str]]:
    return [
        (str(a.instance), str(a.source), str(a.destination))
        for a in plan.actions
        if a.type == ActionType.MIGRATE
    ]


def test_a_swap_between_full_hosts_goes_through_a_temporary_host() -> None:
    c = cluster(
        [host("a", 2, 2048), host("b", 2, 2048), host("t", 4, 4096)],
        [vm("x", "a"), vm("y", "b")],
    )
    plan = plan_for(c, Move("x", "a", "b", reason="swap"), Move("y", "b", "a", reason="swap"))
    by_leg = {leg: a for leg, a in zip(legs(plan), plan.actions, strict=True)}
    assert sorted(by_leg) == [("x", "a", "t"), ("x", "t", "b"), ("y", "b", "a")]
    first, second, other = by_leg[("x", "a", "t")], by_leg[("x", "t", "b")], by_leg[("y", "b", "a")]
    assert first.parents == ()
    assert set(other.parents) == {first.id}  # y lands on a once x has left it
    assert set(second.parents) == {first.id, other.id}  # x reaches b once y has left it
    assert "for a while" in first.explanation
    assert "temporary stop on t" in second.explanation


def test_a_swap_with_nowhere_to_stop_says_why() -> None:
    c = cluster(
        [host("a", 2, 2048), host("b", 2, 2048), host("t", 1, 1024)],
        [vm("x", "a"), vm("y", "b")],
    )
    with pytest.raises(PlanningError, match="no temporary stop is possible") as caught:
        plan_for(c, Move("x", "a", "b"), Move("y", "b", "a"))
    assert set(caught.value.moves) == {"x", "y"}
    assert "x (a→b) lacks 2 vCPU and 2048 MB RAM on b until y leaves" in str(caught.value)


def test_server_group_members_never_hop() -> None:
    c = cluster(
        [host("a", 2, 2048), host("b", 2, 2048), host("t", 8, 8192)],
        [vm("x", "a", groups=("g",)), vm("y", "b", groups=("g",))],
        {"g": GroupPolicy.ANTI_AFFINITY},
    )
    with pytest.raises(PlanningError):
        plan_for(c, Move("x", "a", "b"), Move("y", "b", "a"))


def test_a_host_being_drained_is_not_a_temporary_stop() -> None:
    c = cluster(
        [host("a", 2, 2048), host("b", 2, 2048), host("t", 8, 8192)],
        [vm("x", "a"), vm("y", "b")],
    )
    with pytest.raises(PlanningError, match="no temporary stop is possible"):
        plan_for(
            c,
            Move("x", "a", "b"),
            Move("y", "b", "a"),
            changes=(HostChange("t", HostState.MAINTENANCE),),
        )


def test_a_three_way_rotation_needs_one_stop() -> None:
    c = cluster(
        [host(h, 2, 2048) for h in "abc"] + [host("t", 2, 2048)],
        [vm("x", "a"), vm("y", "b"), vm("z", "c")],
    )
    plan = plan_for(c, Move("x", "a", "b"), Move("y", "b", "c"), Move("z", "c", "a"))
    assert len(plan.actions) == 4
    hopped = [leg for leg in legs(plan) if "t" in leg[1:]]
    assert len(hopped) == 2 and hopped[0][0] == hopped[1][0]


def test_power_on_comes_before_enable_and_any_arrival() -> None:
    c = cluster([host("a"), off("b")], [vm("x", "a")])
    plan = plan_for(
        c,
        Move("x", "a", "b"),
        changes=(HostChange("b", HostState.DISABLED), HostChange("b", HostState.ENABLED)),
    )
    power, enable, move = plan.actions
    assert (power.type, power.parameters["power"], power.parameters["state"]) == (
        ActionType.POWER,
        "on",
        "disabled",
    )
    assert enable.type == ActionType.CHANGE_NODE_STATE and enable.parents == (power.id,)
    assert set(move.parents) == {power.id, enable.id}


def test_power_off_waits_for_every_departure_and_sorts_last() -> None:
    c = cluster([host("a"), host("b"), host("c")], [vm("x", "a"), vm("y", "a"), vm("z", "c")])
    plan = plan_for(
        c,
        Move("x", "a", "b"),
        Move("y", "a", "b"),
        Move("z", "c", "b"),
        changes=(HostChange("a", HostState.OFF),),
    )
    power = plan.actions[-1]
    assert power.type == ActionType.POWER and power.parameters["power"] == "off"
    departures = {a.id for a in plan.actions if a.type == ActionType.MIGRATE and a.source == "a"}
    assert set(power.parents) == departures
