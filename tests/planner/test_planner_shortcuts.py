"""The planner's shortcuts: with no action depending on another, the order is the
one the heap gives; an arrival on a host already over its capacity waits for the
departures that pay its debt."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fakes.clusters import cluster, host, vm
from opendrs import planner
from opendrs.domain.action import ActionType, PlanLimits
from opendrs.domain.solution import Move, Solution

SETTINGS = settings(max_examples=400, deadline=None)


@SETTINGS
@given(st.lists(st.integers(0, 5), max_size=30))
def test_without_parents_the_order_is_the_heaps(ranks: list[int]) -> None:
    nodes = [planner._Node(ActionType.MIGRATE, {}, "", rank) for rank in ranks]
    assert planner._topological(nodes) == planner._heap_order(nodes)


def test_an_arrival_on_an_overfull_host_waits_for_who_paid_its_debt() -> None:
    # a is 1024 MB over: x's departure pays that, w's frees the room z lands in.
    c = cluster(
        [host("roomy", 64, 65536), host("a", 8, 2048)],
        [
            vm("x", "a", 1, 1024),
            vm("w", "a", 1, 1024),
            vm("y", "a", 1, 1024),
            vm("z", "roomy", 1, 512),
        ],
    )
    solution = Solution(
        moves=(Move("x", "a", "roomy"), Move("w", "a", "roomy"), Move("z", "roomy", "a"))
    )
    now = planner.build_plan(solution, c, PlanLimits(), "audit", 1.0)
    x, w, z = now.actions
    assert set(z.parents) == {x.id, w.id}
