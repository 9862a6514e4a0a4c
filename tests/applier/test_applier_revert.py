"""Revert: completed moves of a failed or cancelled plan are planned back through the
same planner, and running that plan restores the placement."""

from __future__ import annotations

from fakes.clusters import cluster, host, vm
from fakes.driver import FakeDriver
from fakes.plans import run_to_end
from fakes.repositories import MemoryRepositories
from opendrs.applier import PlanExecutor
from opendrs.applier.revert import plan_revert, revert_solution
from opendrs.domain.action import ActionState, ActionType, PlanLimits, PlanState
from opendrs.domain.clock import ManualClock
from opendrs.domain.cluster import Cluster
from opendrs.domain.host import HostState
from opendrs.domain.solution import HostChange, Move, Solution
from opendrs.planner import build_plan


def current(c: Cluster, driver: FakeDriver, states: dict[str, HostState]) -> Cluster:
    hosts = [h.with_state(states.get(h.name, h.state)) for h in c.hosts.values()]
    instances = [
        i.__class__(**{**_fields(i), "host": driver.placement[i.name]})
        for i in c.instances.values()
    ]
    return Cluster.of(hosts, instances)


def _fields(obj: object) -> dict[str, object]:
    return {f: getattr(obj, f) for f in obj.__dataclass_fields__}  # type: ignore[attr-defined]


def test_a_failed_drain_is_reverted_through_the_planner() -> None:
    c = cluster([host("a"), host("b"), host("c")], [vm("x", "a"), vm("y", "a"), vm("z", "a")])
    solution = Solution(
        moves=(Move("x", "a", "b"), Move("y", "a", "c"), Move("z", "a", "b")),
        host_changes=(HostChange("a", HostState.MAINTENANCE), HostChange("a", HostState.OFF)),
    )
    plan = build_plan(solution, c, PlanLimits(), "audit", 0.0)
    repo = MemoryRepositories()
    repo.save_plan(plan)
    driver = FakeDriver({"x": "a", "y": "a", "z": "a"}, polls=1)
    driver.fail_migration["z"] = "network down"
    executor = PlanExecutor(repo, driver, ManualClock())
    executor.start(plan.id)
    failed = run_to_end(executor, plan.id)
    assert failed.state == PlanState.FAILED
    assert driver.placement == {"x": "b", "y": "c", "z": "a"}

    now = current(c, driver, dict(driver.host_states))
    undo = revert_solution(failed, now)
    assert sorted((m.instance, m.source, m.destination) for m in undo.moves) == [
        ("x", "b", "a"),
        ("y", "c", "a"),
    ]
    # a went to maintenance during the plan; it must take VMs again.
    assert undo.host_changes == (HostChange("a", HostState.ENABLED, undo.host_changes[0].reason),)

    back = plan_revert(failed, now, PlanLimits(), 1.0)
    enable = next(a for a in back.actions if a.type == ActionType.CHANGE_NODE_STATE)
    assert all(enable.id in a.parents for a in back.actions if a.type == ActionType.MIGRATE)
    repo.save_plan(back)
    executor.start(back.id)
    assert run_to_end(executor, back.id).state == PlanState.SUCCEEDED
    assert driver.placement == {"x": "a", "y": "a", "z": "a"}
    assert driver.host_states["a"] == HostState.ENABLED


def test_nothing_to_revert_is_an_empty_plan() -> None:
    c = cluster([host("a"), host("b")], [vm("x", "a")])
    plan = build_plan(Solution(moves=(Move("x", "a", "b"),)), c, PlanLimits(), "audit", 0.0)
    back = plan_revert(plan, c, PlanLimits(), 1.0)
    assert back.actions == () and back.state == PlanState.SUCCEEDED
    assert "left every VM where it started" in back.message
    assert plan.actions[0].state == ActionState.PENDING
