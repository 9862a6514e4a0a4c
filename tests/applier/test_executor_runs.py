"""PlanExecutor on plans that go well: start, order, limits, host states, the journal
written before and after each driver call, and progress callbacks."""

from __future__ import annotations

import pytest

from fakes.driver import FakeDriver
from fakes.plans import host_state, migrate, run_to_end, saved_plan
from fakes.repositories import MemoryRepositories
from opendrs.applier import PlanExecutor
from opendrs.domain.action import Action, ActionPlan, ActionState, PlanLimits, PlanState
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import InvalidInput, InvalidTransition
from opendrs.domain.host import HostState


def executor(
    repo: MemoryRepositories, driver: FakeDriver, limits: PlanLimits | None = None, **kw: object
) -> PlanExecutor:
    return PlanExecutor(repo, driver, ManualClock(100.0), limits, **kw)  # type: ignore[arg-type]


def test_a_plan_runs_its_actions_in_dependency_order() -> None:
    repo = MemoryRepositories()
    driver = FakeDriver({"x": "a", "y": "b", "z": "a"}, polls=2)
    disable = host_state("a", "disabled")
    y = migrate("y", "b", "c")
    x = migrate("x", "a", "b", disable, y)
    z = migrate("z", "a", "c", disable)
    off = host_state("a", "off", x, z)
    plan = saved_plan(repo, disable, y, x, z, off)
    run = executor(repo, driver)

    started = run.start(plan.id)
    assert started.state == PlanState.ONGOING
    assert driver.history == []
    done = run_to_end(run, plan.id)

    assert done.state == PlanState.SUCCEEDED
    assert done.message == "5 of 5 actions succeeded"
    assert driver.placement == {"x": "b", "y": "c", "z": "c"}
    assert driver.host_states == {"a": HostState.OFF}
    order = [step[:2] for step in driver.history]
    assert order.index(("host", "a")) < order.index(("start", "x"))
    assert order.index(("done", "y")) < order.index(("start", "x"))
    assert order.index(("done", "x")) < len(order) - 1
    assert driver.history[-1] == ("host", "a", "off")
    # The first round disabled a and started y and z together; x waited for y.
    assert driver.peak_total == 2
    assert all(a.state == ActionState.SUCCEEDED for a in done.actions)
    assert all(a.finished_at is not None and a.started_at is not None for a in done.actions)


def test_every_action_is_journaled_before_and_after_its_driver_calls() -> None:
    repo = MemoryRepositories()
    driver = FakeDriver({"x": "a"}, polls=3)
    journal_seen: list[tuple[int, int]] = []
    original = driver.start_migration

    def spying_start(instance: str, destination: str, live: bool = True) -> str:
        journal_seen.append((len(repo.journal), len(driver.operations)))
        return original(instance, destination, live)

    driver.start_migration = spying_start  # type: ignore[method-assign]
    plan = saved_plan(repo, migrate("x", "a", "b"))
    run = executor(repo, driver)
    run.start(plan.id)
    run_to_end(run, plan.id)

    states = [(a.state, bool(a.parameters.get("operation_id"))) for a in repo.journal]
    assert states == [
        (ActionState.ONGOING, False),
        (ActionState.ONGOING, True),
        (ActionState.SUCCEEDED, True),
    ]
    assert journal_seen == [(1, 0)]
    assert repo.journal[1].parameters["operation_id"] == "op-1"


def test_migrations_never_exceed_the_limits() -> None:
    placement = {f"s{i}": "a" for i in range(6)} | {f"t{i}": "b" for i in range(6)}
    moves = [migrate(f"s{i}", "a", f"d{i % 2}") for i in range(6)]
    moves += [migrate(f"t{i}", "b", f"d{i % 3}") for i in range(6)]
    repo = MemoryRepositories()
    driver = FakeDriver(placement, polls=3)
    plan = saved_plan(repo, *moves, limits=PlanLimits(2, 2, 8))
    run = executor(repo, driver, PlanLimits(3, 3, 3))
    run.start(plan.id)

    assert run_to_end(run, plan.id).state == PlanState.SUCCEEDED
    # The tighter of the plan's and the executor's limits holds: 2 per host, 3 in all.
    assert driver.peak_total == 3
    assert max(driver.peak_source.values()) == 2
    assert max(driver.peak_destination.values()) == 2
    assert sum(driver.moved.values()) == 12


def test_limits_count_migrations_of_every_running_plan() -> None:
    repo = MemoryRepositories()
    driver = FakeDriver({"x": "a", "y": "a", "z": "a"}, polls=2)
    first = saved_plan(repo, migrate("x", "a", "b"), at=1.0)
    second = saved_plan(repo, migrate("y", "a", "c"), migrate("z", "a", "d"), at=2.0)
    run = executor(repo, driver, PlanLimits(max_per_source=2))
    run.start(first.id)
    run.start(second.id)
    for _ in range(20):
        run.advance_all()
    assert driver.peak_source["a"] == 2
    assert repo.get_plan(first.id).state == PlanState.SUCCEEDED
    assert repo.get_plan(second.id).state == PlanState.SUCCEEDED


def test_time_driven_migrations_finish_as_the_clock_moves() -> None:
    clock = ManualClock(0.0)
    repo = MemoryRepositories()
    driver = FakeDriver({"x": "a"}, seconds=30.0, clock=clock)
    plan = saved_plan(repo, migrate("x", "a", "b"))
    run = PlanExecutor(repo, driver, clock)
    run.start(plan.id)
    for _ in range(5):
        assert run.advance(plan.id).state == PlanState.ONGOING
    clock.advance(30.0)
    done = run.advance(plan.id)
    assert done.state == PlanState.SUCCEEDED
    assert done.actions[0].started_at == 0.0
    assert done.actions[0].finished_at == 30.0


def test_nop_succeeds_and_an_empty_plan_succeeds_at_start() -> None:
    repo = MemoryRepositories()
    run = executor(repo, FakeDriver({}))
    nop = saved_plan(repo, Action(type="nop", parameters={}))  # type: ignore[arg-type]
    run.start(nop.id)
    assert run.advance(nop.id).state == PlanState.SUCCEEDED
    empty = saved_plan(repo)
    assert run.start(empty.id).state == PlanState.SUCCEEDED


def test_transitions_are_reported_and_a_failing_hook_is_survived() -> None:
    repo = MemoryRepositories()
    seen: list[tuple[str, str]] = []

    def hook(plan: ActionPlan, action: Action | None) -> None:
        seen.append((plan.state.value, action.state.value if action else "-"))
        if action is not None and action.state == ActionState.ONGOING:
            raise RuntimeError("bus down")

    plan = saved_plan(repo, migrate("x", "a", "b"))
    run = executor(repo, FakeDriver({"x": "a"}, polls=1), on_transition=hook)
    run.start(plan.id)
    run_to_end(run, plan.id)
    assert seen == [
        ("PENDING", "-"),
        ("ONGOING", "-"),
        ("ONGOING", "ONGOING"),
        ("ONGOING", "SUCCEEDED"),
        ("SUCCEEDED", "-"),
    ]
    assert run.hook_failures == 1


def test_only_recommended_or_pending_plans_start_and_bad_plans_are_refused() -> None:
    repo = MemoryRepositories()
    run = executor(repo, FakeDriver({"x": "a"}))
    plan = saved_plan(repo, migrate("x", "a", "b"))
    run.start(plan.id)
    with pytest.raises(InvalidTransition):
        run.start(plan.id)

    orphan = migrate("y", "a", "b")
    orphan = Action(type=orphan.type, parameters=orphan.parameters, parents=("nope",))
    with pytest.raises(InvalidInput, match="unknown parent 'nope'"):
        run.start(saved_plan(repo, orphan).id)

    a = Action(type=orphan.type, parameters=orphan.parameters, parents=("b",), id="a")
    b = Action(type=orphan.type, parameters=orphan.parameters, parents=("a",), id="b")
    with pytest.raises(InvalidInput, match="depends on itself"):
        run.start(saved_plan(repo, a, b).id)
