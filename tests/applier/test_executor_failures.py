"""PlanExecutor when things go wrong: a failed action skips what depends on it (and
only that), driver errors of every kind fail the action instead of the executor,
and the plan ends FAILED saying what failed and what was skipped."""

from __future__ import annotations

from fakes.driver import FakeDriver
from fakes.plans import host_state, migrate, run_to_end, saved_plan
from fakes.repositories import MemoryRepositories
from opendrs.applier import PlanExecutor
from opendrs.domain.action import ActionPlan, ActionState, PlanState
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import DriverError


def run(repo: MemoryRepositories, driver: FakeDriver, plan: ActionPlan) -> ActionPlan:
    executor = PlanExecutor(repo, driver, ManualClock())
    executor.start(plan.id)
    return run_to_end(executor, plan.id)


def states(plan: ActionPlan) -> dict[str, ActionState]:
    return {a.id: a.state for a in plan.actions}


def test_a_failed_migration_skips_its_dependents_only() -> None:
    repo = MemoryRepositories()
    driver = FakeDriver({"x": "a", "y": "b", "z": "c", "w": "c"})
    driver.fail_migration["x"] = "libvirt: migration aborted"
    x = migrate("x", "a", "b")
    y = migrate("y", "b", "a", x)  # needs x gone from a
    off = host_state("b", "off", y)  # needs y gone from b
    z = migrate("z", "c", "d")  # independent branch
    w = migrate("w", "c", "d", z)
    done = run(repo, driver, saved_plan(repo, x, y, off, z, w))

    assert states(done) == {
        x.id: ActionState.FAILED,
        y.id: ActionState.SKIPPED,
        off.id: ActionState.SKIPPED,
        z.id: ActionState.SUCCEEDED,
        w.id: ActionState.SUCCEEDED,
    }
    assert done.state == PlanState.FAILED
    assert done.action(y.id).message == "migrate x (a→b) failed"
    assert done.action(off.id).message == "migrate x (a→b) failed"
    assert done.message == (
        "2 of 5 actions succeeded; failed: migrate x (a→b) (libvirt: migration aborted); "
        "skipped: migrate y (b→a) (migrate x (a→b) failed); "
        "b→off (migrate x (a→b) failed)"
    )
    assert driver.placement == {"x": "a", "y": "b", "z": "d", "w": "d"}
    assert "b" not in driver.host_states


def test_driver_errors_of_any_kind_fail_the_action_not_the_executor() -> None:
    repo = MemoryRepositories()
    driver = FakeDriver({"x": "a", "y": "a", "z": "a"})
    driver.fail_start["x"] = DriverError("nova: 409 conflict")
    driver.fail_locate["y"] = ZeroDivisionError("driver bug")
    driver.fail_host_state["h"] = DriverError("nova: service not found")
    plan = saved_plan(
        repo,
        migrate("x", "a", "b"),
        migrate("y", "a", "b"),
        host_state("h", "disabled"),
        migrate("z", "a", "b"),
    )
    done = run(repo, driver, plan)
    messages = {a.id: (a.state, a.message) for a in done.actions}
    assert messages["m-x"] == (ActionState.FAILED, "nova: 409 conflict")
    assert messages["m-y"][0] == ActionState.FAILED
    assert "locate: unexpected driver error: ZeroDivisionError('driver bug')" in messages["m-y"][1]
    assert messages["h-h-disabled"] == (ActionState.FAILED, "nova: service not found")
    assert messages["m-z"][0] == ActionState.SUCCEEDED
    assert done.state == PlanState.FAILED


def test_an_instance_no_longer_on_its_source_fails_and_one_already_there_succeeds() -> None:
    repo = MemoryRepositories()
    driver = FakeDriver({"x": "elsewhere", "y": "b"})
    done = run(repo, driver, saved_plan(repo, migrate("x", "a", "b"), migrate("y", "a", "b")))
    assert done.action("m-x").state == ActionState.FAILED
    assert done.action("m-x").message == "x is on elsewhere, expected on source a"
    assert done.action("m-y").state == ActionState.SUCCEEDED
    assert done.action("m-y").message == "y is already on b"
    assert driver.started == {}


def test_a_lost_operation_is_settled_by_where_the_instance_is() -> None:
    repo = MemoryRepositories()
    driver = FakeDriver({"x": "a", "y": "a"}, polls=3)
    executor = PlanExecutor(repo, driver, ManualClock())
    plan = saved_plan(repo, migrate("x", "a", "b"), migrate("y", "a", "c"))
    executor.start(plan.id)
    executor.advance(plan.id)
    # The cloud forgets both operations; x had in fact arrived.
    driver.operations.clear()
    driver.placement["x"] = "b"
    done = run_to_end(executor, plan.id)
    assert done.action("m-x").state == ActionState.SUCCEEDED
    assert done.action("m-y").state == ActionState.FAILED
    assert "operation op-2: operation op-2 not found" in done.action("m-y").message


def test_a_transient_polling_error_keeps_the_action_running() -> None:
    repo = MemoryRepositories()
    driver = FakeDriver({"x": "a"}, polls=2)
    executor = PlanExecutor(repo, driver, ManualClock())
    plan = saved_plan(repo, migrate("x", "a", "b"))
    executor.start(plan.id)
    executor.advance(plan.id)
    healthy = driver.operation
    driver.operation = lambda op: (_ for _ in ()).throw(  # type: ignore[method-assign]
        DriverError("timeout", transient=True)
    )
    assert executor.advance(plan.id).action("m-x").state == ActionState.ONGOING
    driver.operation = healthy  # type: ignore[method-assign]
    assert run_to_end(executor, plan.id).state == PlanState.SUCCEEDED


def test_advance_all_survives_a_plan_whose_round_raises() -> None:
    repo = MemoryRepositories()
    driver = FakeDriver({"x": "a", "y": "a"}, polls=1)
    executor = PlanExecutor(repo, driver, ManualClock())
    broken = saved_plan(repo, migrate("x", "a", "b"), at=1.0)
    fine = saved_plan(repo, migrate("y", "a", "c"), at=2.0)
    executor.start(broken.id)
    executor.start(fine.id)
    original = repo.journal_action

    def flaky(action):  # type: ignore[no-untyped-def]
        if action.plan_id == broken.id:
            raise OSError("disk full")
        original(action)

    repo.journal_action = flaky  # type: ignore[method-assign]
    for _ in range(3):
        executor.advance_all()
    assert executor.plan_failures == 3
    assert repo.get_plan(fine.id).state == PlanState.SUCCEEDED
    assert repo.get_plan(broken.id).state == PlanState.ONGOING
