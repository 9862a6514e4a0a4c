"""Resuming after a crash: the executor dies at every write of a 10-move plan (just
before it, or just after it), a new executor is built on the same repository and the
same cloud, and every VM still moves exactly once and the plan succeeds."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fakes.clusters import cluster, host, vm
from fakes.driver import BasicFakeDriver, FakeDriver
from fakes.plans import migrate, run_to_end, saved_plan
from fakes.repositories import MemoryRepositories
from opendrs.applier import PlanExecutor
from opendrs.domain.action import Action, ActionPlan, ActionState, PlanLimits, PlanState
from opendrs.domain.clock import ManualClock
from opendrs.domain.host import HostState
from opendrs.domain.solution import HostChange, Move, Solution
from opendrs.planner import build_plan


class Crash(Exception):
    """The process died."""


class CrashingRepositories(MemoryRepositories):
    """Counts every write and dies just before or just after the chosen one."""

    def __init__(self, crash_at: int | None = None, before: bool = True) -> None:
        super().__init__()
        self.writes = 0
        self.crash_at = crash_at
        self.before = before

    def _write(self, write: Callable[[], None]) -> None:
        self.writes += 1
        due = self.writes == self.crash_at
        if due and self.before:
            self.crash_at = None
            raise Crash(f"before write {self.writes}")
        write()
        if due:
            self.crash_at = None
            raise Crash(f"after write {self.writes}")

    def journal_action(self, action: Action) -> None:
        self._write(lambda: MemoryRepositories.journal_action(self, action))

    def set_plan_state(self, plan_id: str, state: PlanState, message: str = "") -> None:
        self._write(lambda: MemoryRepositories.set_plan_state(self, plan_id, state, message))


TARGET = {
    "a0": "b", "a1": "b", "a2": "d", "a3": "d",
    "b0": "c", "b1": "c", "b2": "c", "b3": "c",
    "c0": "d", "c1": "d",
}  # fmt: skip


def ten_move_plan() -> tuple[ActionPlan, dict[str, str]]:
    """Drain a into full b and empty d, b into c, c into d; a goes to maintenance, then off."""
    hosts = [host(name) for name in "abcd"]
    vms = [vm(f"{h}{i}", h) for h in "ab" for i in range(4)] + [vm("c0", "c"), vm("c1", "c")]
    c = cluster(hosts, vms)
    solution = Solution(
        moves=tuple(Move(name, name[0], dst) for name, dst in TARGET.items()),
        host_changes=(HostChange("a", HostState.MAINTENANCE), HostChange("a", HostState.OFF)),
    )
    plan = build_plan(solution, c, PlanLimits(), "audit", 0.0)
    return plan, {v.name: v.host for v in vms}


def execute(
    crash_at: int | None, before: bool, driver: BasicFakeDriver
) -> tuple[CrashingRepositories, ActionPlan, bool]:
    repo = CrashingRepositories(crash_at, before)
    plan, _ = ten_move_plan()
    repo.save_plan(plan)
    clock = ManualClock()
    executor = PlanExecutor(repo, driver, clock)
    try:
        executor.start(plan.id)
        return repo, run_to_end(executor, plan.id), False
    except Crash:
        pass
    executor = PlanExecutor(repo, driver, clock)
    executor.resume()
    if repo.get_plan(plan.id).state == PlanState.RECOMMENDED:
        executor.start(plan.id)  # the approval itself was lost: the operator approves again
    return repo, run_to_end(executor, plan.id), True


def new_driver(kind: type[BasicFakeDriver] = FakeDriver) -> BasicFakeDriver:
    _, placement = ten_move_plan()
    driver = kind(placement, polls=2)
    # Different durations so migrations finish in a mixed order.
    driver.polls_for = {name: 1 + i % 3 for i, name in enumerate(sorted(placement))}
    return driver


def test_the_plan_has_dependencies_worth_resuming() -> None:
    plan, _ = ten_move_plan()
    assert len(plan.actions) == 12
    assert sum(1 for a in plan.actions if a.parents) == 7


def writes_of_a_clean_run() -> int:
    repo, plan, crashed = execute(None, True, new_driver())
    assert not crashed and plan.state == PlanState.SUCCEEDED
    return repo.writes


@pytest.mark.parametrize("before", [True, False], ids=["before-write", "after-write"])
def test_a_crash_at_any_write_still_moves_every_vm_exactly_once(before: bool) -> None:
    total = writes_of_a_clean_run()
    assert total >= 3 * 10 + 2 * 2 + 3  # every migration, host change and plan step
    for crash_at in range(1, total + 1):
        where = f"crash {'before' if before else 'after'} write {crash_at} of {total}"
        driver = new_driver()
        _, plan, crashed = execute(crash_at, before, driver)
        assert crashed, where
        assert plan.state == PlanState.SUCCEEDED, f"{where}: {plan.message}"
        assert driver.placement == TARGET, where
        assert driver.started == dict.fromkeys(TARGET, 1), where
        assert driver.moved == dict.fromkeys(TARGET, 1), where
        assert driver.host_states == {"a": HostState.OFF}, where
        assert all(a.state == ActionState.SUCCEEDED for a in plan.actions), where


def test_without_an_operation_finder_a_crash_before_the_call_restarts_once() -> None:
    total = writes_of_a_clean_run()
    for crash_at in range(1, total + 1):
        driver = new_driver(BasicFakeDriver)
        _, plan, _ = execute(crash_at, False, driver)
        where = f"crash after write {crash_at}"
        # Crashing right after a write never leaves a started-but-unjournaled migration.
        assert plan.state == PlanState.SUCCEEDED, f"{where}: {plan.message}"
        assert driver.moved == dict.fromkeys(TARGET, 1), where
        assert driver.started == dict.fromkeys(TARGET, 1), where


def test_without_an_operation_finder_an_unjournaled_start_is_not_repeated() -> None:
    # Die after start_migration returned but before its operation id was written: the
    # blind restart is refused by the cloud, the action fails, the VM still moves once.
    # Writes: plan PENDING, plan ONGOING, action ONGOING, then the operation id.
    repo = CrashingRepositories(crash_at=4, before=True)
    clock = ManualClock()
    driver = BasicFakeDriver({"x": "a"}, seconds=10.0, clock=clock)
    plan = saved_plan(repo, migrate("x", "a", "b"))
    executor = PlanExecutor(repo, driver, clock)
    executor.start(plan.id)
    with pytest.raises(Crash):
        executor.advance(plan.id)
    executor = PlanExecutor(repo, driver, clock)
    executor.resume()
    done = run_to_end(executor, plan.id)
    assert done.action("m-x").state == ActionState.FAILED
    assert done.action("m-x").message == "instance x is already migrating"
    clock.advance(10.0)
    assert driver.started == {"x": 1}
    assert driver.locate("x") == "b"


def test_without_an_operation_finder_a_second_interrupted_restart_asks_for_a_person() -> None:
    repo = MemoryRepositories()
    driver = BasicFakeDriver({"x": "a"})
    plan = saved_plan(repo, migrate("x", "a", "b"))
    executor = PlanExecutor(repo, driver, ManualClock())
    executor.start(plan.id)
    stale = repo.get_plan(plan.id).action("m-x").moved_to(ActionState.ONGOING, 0.0)
    repo.journal_action(
        Action(
            type=stale.type,
            parameters={**stale.parameters, "restarted": True},
            state=stale.state,
            plan_id=plan.id,
            id=stale.id,
        )
    )
    executor.resume()
    done = run_to_end(executor, plan.id)
    assert done.action("m-x").state == ActionState.FAILED
    assert "interrupted twice" in done.action("m-x").message
    assert driver.started == {}


def test_a_vm_found_on_its_destination_after_a_crash_counts_as_moved() -> None:
    repo = MemoryRepositories()
    driver = FakeDriver({"x": "b"})
    plan = saved_plan(repo, migrate("x", "a", "b"))
    executor = PlanExecutor(repo, driver, ManualClock())
    executor.start(plan.id)
    action = repo.get_plan(plan.id).action("m-x")
    repo.journal_action(action.moved_to(ActionState.ONGOING, 0.0))
    resumed = PlanExecutor(repo, driver, ManualClock()).resume()
    assert [p.state for p in resumed] == [PlanState.SUCCEEDED]
    assert resumed[0].action("m-x").message == "found on b after a restart"
    assert driver.started == {}
