"""The applier's patience: retries with backoff (on the injected clock) only for
errors the driver marks transient, timeouts per action type with an abort where the
driver can, a bandwidth budget, and cancel that aborts running migrations."""

from __future__ import annotations

import pytest

from fakes.driver import FakeDriver
from fakes.plans import host_state, migrate, run_to_end, saved_plan
from fakes.repositories import MemoryRepositories
from opendrs.applier import PlanExecutor
from opendrs.applier.policy import ApplierPolicy, RetryPolicy, policy_from_settings
from opendrs.config import ApplierSettings
from opendrs.domain.action import ActionState, ActionType, PlanLimits, PlanState
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import DriverError, InvalidInput
from opendrs.domain.host import HostState
from opendrs.domain.ports import OperationState


class FlakyDriver(FakeDriver):
    """Start of a migration fails `failures` times before it works."""

    def __init__(self, placement: dict[str, str], failures: int, transient: bool) -> None:
        super().__init__(placement, polls=1)
        self.failures = failures
        self.transient = transient
        self.attempt_times: list[float] = []
        self.clock_for_test = ManualClock()

    def start_migration(self, instance: str, destination: str, live: bool = True) -> str:
        self.attempt_times.append(self.clock_for_test.now())
        if self.failures > 0:
            self.failures -= 1
            raise DriverError("libvirtd busy", transient=self.transient)
        return super().start_migration(instance, destination, live)


class AbortingDriver(FakeDriver):
    def __init__(self, placement: dict[str, str], polls: int) -> None:
        super().__init__(placement, polls=polls)
        self.aborted: list[str] = []

    def abort_operation(self, operation_id: str) -> None:
        op = self.operations[operation_id]
        if op.state != OperationState.RUNNING:
            raise DriverError(f"operation {operation_id} is over")
        op.state = OperationState.FAILED
        op.message = "aborted"
        self.aborted.append(operation_id)


def test_transient_start_failures_are_retried_with_growing_delays() -> None:
    repo = MemoryRepositories()
    driver = FlakyDriver({"x": "a"}, failures=2, transient=True)
    clock = driver.clock_for_test
    policy = ApplierPolicy(retry=RetryPolicy(attempts=3, first_delay=10.0, factor=3.0))
    plan = saved_plan(repo, migrate("x", "a", "b"))
    executor = PlanExecutor(repo, driver, clock, policy=policy)
    executor.start(plan.id)
    executor.advance(plan.id)
    waiting = repo.get_plan(plan.id).actions[0]
    assert waiting.state == ActionState.ONGOING
    assert "attempt 2 of 3 at 10" in waiting.message
    for _ in range(10):
        clock.advance(5.0)
        executor.advance(plan.id)
    done = run_to_end(executor, plan.id)
    assert done.state == PlanState.SUCCEEDED
    assert driver.attempt_times == [0.0, 10.0, 40.0]  # 10 s, then 30 s later
    assert driver.started == {"x": 1}


def test_retries_stop_after_the_last_attempt() -> None:
    repo = MemoryRepositories()
    driver = FlakyDriver({"x": "a"}, failures=5, transient=True)
    clock = driver.clock_for_test
    policy = ApplierPolicy(retry=RetryPolicy(attempts=2, first_delay=1.0))
    plan = saved_plan(repo, migrate("x", "a", "b"))
    executor = PlanExecutor(repo, driver, clock, policy=policy)
    executor.start(plan.id)
    executor.advance(plan.id)
    clock.advance(1.0)
    done = run_to_end(executor, plan.id)
    assert done.state == PlanState.FAILED
    assert len(driver.attempt_times) == 2
    assert done.actions[0].message == "libvirtd busy"


def test_permanent_failures_are_never_retried() -> None:
    repo = MemoryRepositories()
    driver = FlakyDriver({"x": "a"}, failures=1, transient=False)
    plan = saved_plan(repo, migrate("x", "a", "b"))
    executor = PlanExecutor(repo, driver, driver.clock_for_test)
    executor.start(plan.id)
    assert run_to_end(executor, plan.id).state == PlanState.FAILED
    assert len(driver.attempt_times) == 1


def test_a_migration_past_its_timeout_is_aborted_and_fails_its_dependents() -> None:
    repo = MemoryRepositories()
    clock = ManualClock()
    driver = AbortingDriver({"x": "a"}, polls=1000)
    first = migrate("x", "a", "b")
    plan = saved_plan(repo, first, host_state("a", "off", first))
    policy = ApplierPolicy(timeouts={ActionType.MIGRATE: 60.0})
    executor = PlanExecutor(repo, driver, clock, policy=policy)
    executor.start(plan.id)
    executor.advance(plan.id)
    clock.advance(59.0)
    assert executor.advance(plan.id).state == PlanState.ONGOING
    clock.advance(2.0)
    done = executor.advance(plan.id)
    assert done.state == PlanState.FAILED
    moved, off = done.actions
    assert moved.state == ActionState.FAILED
    assert "timed out after 60 s; the migration was aborted" in moved.message
    assert off.state == ActionState.SKIPPED
    assert driver.aborted == ["op-1"] and driver.placement == {"x": "a"}


def test_a_timeout_without_abort_says_the_migration_may_finish() -> None:
    repo = MemoryRepositories()
    clock = ManualClock()
    driver = FakeDriver({"x": "a"}, polls=1000)
    plan = saved_plan(repo, migrate("x", "a", "b"))
    executor = PlanExecutor(
        repo, driver, clock, policy=ApplierPolicy(timeouts={ActionType.MIGRATE: 30.0})
    )
    executor.start(plan.id)
    executor.advance(plan.id)
    clock.advance(31.0)
    done = executor.advance(plan.id)
    assert "cannot abort the migration, which may still finish" in done.actions[0].message


def test_host_state_changes_have_their_own_timeout() -> None:
    policy = ApplierPolicy()
    assert policy.timeout(ActionType.CHANGE_NODE_STATE) == 300.0
    assert policy.timeout(ActionType.MIGRATE) == 1800.0
    with pytest.raises(InvalidInput, match=r"timeouts\.migrate"):
        ApplierPolicy(timeouts={ActionType.MIGRATE: 0.0})
    with pytest.raises(InvalidInput, match="attempts"):
        RetryPolicy(attempts=0)
    assert RetryPolicy(first_delay=5, factor=2, max_delay=15).delay(3) == 15.0


def test_the_bandwidth_budget_spaces_out_migration_starts() -> None:
    repo = MemoryRepositories()
    clock = ManualClock()
    driver = FakeDriver({f"v{i}": "a" for i in range(4)}, seconds=5.0, clock=clock)
    limits = PlanLimits(max_per_source=8, max_per_destination=8, bandwidth_mb_per_minute=4096)
    moves = [migrate(f"v{i}", "a", "b") for i in range(4)]  # 2048 MB each
    plan = saved_plan(repo, *moves, limits=limits)
    executor = PlanExecutor(repo, driver, clock, limits)
    executor.start(plan.id)
    starts: list[float] = []
    for _ in range(40):
        clock.advance(10.0)
        done = executor.advance(plan.id)
        if done.state == PlanState.SUCCEEDED:
            break
    starts = sorted(a.started_at or 0.0 for a in done.actions)
    assert done.state == PlanState.SUCCEEDED
    # Two fit in any minute: the third starts a minute after the first.
    assert starts[2] - starts[0] >= 60.0 and starts[1] == starts[0]
    with pytest.raises(InvalidInput, match="bandwidth_mb_per_minute"):
        PlanLimits(bandwidth_mb_per_minute=-1)
    assert (
        PlanLimits(bandwidth_mb_per_minute=0)
        .tightest(PlanLimits(bandwidth_mb_per_minute=100))
        .bandwidth_mb_per_minute
        == 100
    )


def test_cancel_with_abort_stops_running_migrations() -> None:
    repo = MemoryRepositories()
    clock = ManualClock()
    driver = AbortingDriver({"x": "a", "y": "a"}, polls=1000)
    plan = saved_plan(repo, migrate("x", "a", "b"), migrate("y", "a", "c"))
    executor = PlanExecutor(repo, driver, clock)
    executor.start(plan.id)
    executor.advance(plan.id)
    done = executor.cancel(plan.id, abort=True)
    assert done.state == PlanState.CANCELLED
    assert [a.state for a in done.actions] == [ActionState.CANCELLED, ActionState.CANCELLED]
    assert driver.placement == {"x": "a", "y": "a"}
    assert len(driver.aborted) == 2


def test_power_actions_go_through_the_driver() -> None:
    repo = MemoryRepositories()
    driver = FakeDriver({})
    plan = saved_plan(repo, host_state("a", "off"))
    power = plan.actions[0].__class__(
        type=ActionType.POWER,
        parameters={"node": "a", "state": "off", "power": "off"},
        id="p",
    )
    plan = saved_plan(repo, power)
    executor = PlanExecutor(repo, driver, ManualClock())
    executor.start(plan.id)
    assert run_to_end(executor, plan.id).state == PlanState.SUCCEEDED
    assert driver.host_states == {"a": HostState.OFF}


def test_the_policy_comes_from_the_applier_settings() -> None:
    settings = ApplierSettings(migrate_timeout_s=600, retry_attempts=5, retry_first_delay_s=2)
    policy = policy_from_settings(settings)
    assert policy.timeout(ActionType.MIGRATE) == 600.0
    assert policy.timeout(ActionType.POWER) == 900.0
    assert policy.retry.attempts == 5 and policy.retry.delay(2) == 4.0


def test_a_plan_that_ended_still_counts_its_recent_starts_against_the_budget() -> None:
    repo = MemoryRepositories()
    clock = ManualClock()
    driver = FakeDriver({"v1": "a", "v2": "a"}, seconds=5.0, clock=clock)
    limits = PlanLimits(max_per_source=8, max_per_destination=8, bandwidth_mb_per_minute=3000)
    first = saved_plan(repo, migrate("v1", "a", "b"), limits=limits)  # 2048 MB
    second = saved_plan(repo, migrate("v2", "a", "b"), limits=limits)
    executor = PlanExecutor(repo, driver, clock, limits)
    executor.start(first.id)
    clock.advance(1.0)
    first = executor.advance(first.id)  # v1 starts at 1 s
    clock.advance(10.0)
    assert executor.advance(first.id).state == PlanState.SUCCEEDED
    executor.start(second.id)
    while clock.now() < 200.0:
        clock.advance(10.0)
        done = executor.advance(second.id)
        if done.state == PlanState.SUCCEEDED:
            break
    [started] = [a.started_at for a in done.actions]
    [first_start] = [a.started_at for a in repo.get_plan(first.id).actions]
    assert started is not None and first_start is not None
    # 2048 + 2048 MB exceed 3000 MB a minute: v2 waits for v1's start to leave the window.
    assert started - first_start >= 60.0
