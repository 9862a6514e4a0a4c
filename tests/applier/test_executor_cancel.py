"""Cancelling a plan: nothing new starts, what runs finishes, pending actions are
cancelled and the plan ends CANCELLED."""

from __future__ import annotations

import pytest

from fakes.driver import FakeDriver
from fakes.plans import migrate, run_to_end, saved_plan
from fakes.repositories import MemoryRepositories
from opendrs.applier import PlanExecutor
from opendrs.domain.action import ActionState, PlanState
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import InvalidTransition


def test_cancel_lets_running_migrations_finish_and_cancels_the_rest() -> None:
    repo = MemoryRepositories()
    driver = FakeDriver({"x": "a", "y": "a", "z": "c"}, polls=3)
    x = migrate("x", "a", "b")
    y = migrate("y", "a", "b", x)
    z = migrate("z", "c", "d")
    plan = saved_plan(repo, x, y, z)
    executor = PlanExecutor(repo, driver, ManualClock())
    executor.start(plan.id)
    executor.advance(plan.id)  # x and z in flight

    cancelling = executor.cancel(plan.id)
    assert cancelling.state == PlanState.CANCELLING
    assert cancelling.action(y.id).state == ActionState.CANCELLED
    assert executor.cancel(plan.id).state == PlanState.CANCELLING  # asking twice is fine

    done = run_to_end(executor, plan.id)
    assert done.state == PlanState.CANCELLED
    assert {a.id: a.state for a in done.actions} == {
        x.id: ActionState.SUCCEEDED,
        y.id: ActionState.CANCELLED,
        z.id: ActionState.SUCCEEDED,
    }
    assert done.message == "2 of 3 actions succeeded; cancelled: migrate y (a→b)"
    assert driver.started == {"x": 1, "z": 1}
    assert driver.placement == {"x": "b", "y": "a", "z": "d"}


def test_a_plan_cancelled_before_it_starts_runs_nothing() -> None:
    repo = MemoryRepositories()
    driver = FakeDriver({"x": "a"})
    plan = saved_plan(repo, migrate("x", "a", "b"))
    executor = PlanExecutor(repo, driver, ManualClock())
    done = executor.cancel(plan.id)
    assert done.state == PlanState.CANCELLED
    assert done.actions[0].state == ActionState.CANCELLED
    assert executor.advance(plan.id).state == PlanState.CANCELLED
    assert driver.history == []
    with pytest.raises(InvalidTransition):
        executor.cancel(plan.id)


def test_cancel_with_nothing_in_flight_ends_at_once() -> None:
    repo = MemoryRepositories()
    plan = saved_plan(repo, migrate("x", "a", "b"))
    executor = PlanExecutor(repo, FakeDriver({"x": "a"}), ManualClock())
    executor.start(plan.id)
    assert executor.cancel(plan.id).state == PlanState.CANCELLED
