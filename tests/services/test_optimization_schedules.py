"""Continuous audits stored with a schedule (as POST /v1/audits makes them): the
optimization service's tick runs each one every interval under the same audit,
skips the suspended ones, never runs a cancelled or failed one again, and a new
service over the same SQLite file resumes the schedules where they were."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import pytest

from fakes.optimization_setup import optimization_over
from fakes.repositories import MemoryRepositories
from opendrs.domain.action import (
    Action,
    ActionPlan,
    ActionState,
    ActionType,
    PlanState,
)
from opendrs.domain.audit import Audit, AuditState, AuditType
from opendrs.domain.clock import ManualClock
from opendrs.domain.host import Host
from opendrs.domain.instance import Flavor, Instance
from opendrs.domain.ports import AuditRepository, ClusterRepository, PlanRepository
from opendrs.services.optimization import ContinuousAudit, Optimization
from opendrs.store.sql.database import open_database
from opendrs.store.sql.repositories import SqlStore

HOT = {"threshold": 80, "target": 75}


class Repositories(ClusterRepository, AuditRepository, PlanRepository, Protocol):
    """What the service is given (the SQL store and the fake are all three)."""


def fill(repos: ClusterRepository) -> None:
    """hot runs 9 of 10 cores: one of x (2 cores) or y (1.5 cores) must go."""
    repos.upsert_hosts(
        [
            Host(name=n, vcpus=v, memory_mb=65536, local_gb=500)
            for n, v in (("hot", 10), ("cool", 16))
        ]
    )
    repos.upsert_instances(
        [
            Instance(n, "hot", Flavor("f", 8, mb, 10), metrics={"cpu_util": 100.0 * used / 8})
            for n, used, mb in (("x", 2.0, 1024), ("y", 1.5, 4096), ("z", 5.5, 8192))
        ]
    )


def make(
    repos: Repositories, clock: ManualClock, *configured: ContinuousAudit
) -> tuple[Optimization, list[str]]:
    launched: list[str] = []
    optimization = optimization_over(
        repos,
        clock,
        launch=launched.append,
        defaults={"overload_relief": HOT},
        ping_pong_window=600.0,
        continuous=configured,
    )
    return optimization, launched


def scheduled(at: float, interval: float = 300.0, **changes: Any) -> Audit:
    """A continuous audit as the API stores it: ONGOING, due at once."""
    audit = Audit(
        goal="overload_relief",
        strategy="",
        audit_type=AuditType.CONTINUOUS,
        auto_trigger=False,
        trigger="api",
        created_at=at,
        interval=interval,
        next_run_at=at,
    )
    return replace(audit.moved_to(AuditState.ONGOING), **changes)


@pytest.fixture
def repos() -> MemoryRepositories:
    repos = MemoryRepositories()
    fill(repos)
    return repos


def test_a_stored_schedule_runs_every_interval_under_the_same_audit(
    repos: MemoryRepositories,
) -> None:
    clock = ManualClock(1000.0)
    audit = scheduled(1000.0)
    repos.save_audit(audit)
    optimization, launched = make(repos, clock)

    (first,) = optimization.tick()
    assert first.audit_id == audit.id and first.state == PlanState.RECOMMENDED
    assert launched == []
    stored = repos.get_audit(audit.id)
    assert (stored.state, stored.last_run_at, stored.next_run_at) == (
        AuditState.ONGOING,
        1000.0,
        1300.0,
    )
    assert stored.message == f"run at 1000: plan {first.id} with {len(first.actions)} actions"
    # The goal's defaults are used for the run, not written into the stored audit.
    assert stored.parameters == {}

    clock.advance(299)
    assert optimization.tick() == []
    clock.advance(1)
    (second,) = optimization.tick()
    assert second.audit_id == audit.id
    assert repos.get_plan(first.id).state == PlanState.SUPERSEDED
    assert (repos.get_audit(audit.id).last_run_at, repos.get_audit(audit.id).next_run_at) == (
        1300.0,
        1600.0,
    )
    # One audit, however many runs: no per-run audit records.
    assert [a.id for a in repos.list_audits()] == [audit.id]


def test_a_late_tick_runs_once_and_the_next_run_counts_from_it(
    repos: MemoryRepositories,
) -> None:
    clock = ManualClock(1000.0)
    audit = scheduled(1000.0, interval=60.0)
    repos.save_audit(audit)
    optimization, _ = make(repos, clock)
    clock.advance(1000)  # 16 intervals late: one run, not 16

    assert len(optimization.tick()) == 1
    assert repos.get_audit(audit.id).next_run_at == 2060.0
    assert optimization.tick() == []


def test_a_suspended_schedule_does_not_run_until_resumed(repos: MemoryRepositories) -> None:
    clock = ManualClock(1000.0)
    audit = scheduled(1000.0)
    repos.save_audit(audit)
    optimization, _ = make(repos, clock)
    assert len(optimization.tick()) == 1

    repos.change_audit(audit.id, AuditState.SUSPENDED, "paused")
    for _ in range(3):
        clock.advance(300)
        assert optimization.tick() == []
    assert repos.get_audit(audit.id).last_run_at == 1000.0

    repos.change_audit(audit.id, AuditState.ONGOING, "resumed")
    # Overdue since 1300: it runs at the first tick after the resume.
    (plan,) = optimization.tick()
    assert plan.audit_id == audit.id
    assert repos.get_audit(audit.id).last_run_at == 1900.0


def test_a_cancelled_schedule_never_runs_again(repos: MemoryRepositories) -> None:
    clock = ManualClock(1000.0)
    audit = scheduled(1000.0)
    repos.save_audit(audit)
    optimization, _ = make(repos, clock)
    assert len(optimization.tick()) == 1

    cancelled = repos.change_audit(audit.id, AuditState.CANCELLED, "stopped")
    assert cancelled.next_run_at is None
    for _ in range(3):
        clock.advance(300)
        assert optimization.tick() == []
    stored = repos.get_audit(audit.id)
    assert (stored.state, stored.last_run_at) == (AuditState.CANCELLED, 1000.0)


def test_a_failing_run_ends_its_audit_failed_and_the_others_still_run(
    repos: MemoryRepositories,
) -> None:
    clock = ManualClock(1000.0)
    broken = scheduled(1000.0, goal="host_maintenance")  # no maintenance_node given
    fine = scheduled(1000.0)
    repos.save_audit(broken)
    repos.save_audit(fine)
    optimization, _ = make(repos, clock)

    (plan,) = optimization.tick()
    assert plan.audit_id == fine.id
    assert optimization.failures == 1
    failed = repos.get_audit(broken.id)
    assert failed.state == AuditState.FAILED and failed.next_run_at is None
    assert failed.message.startswith("run at 1000 failed: ")
    clock.advance(300)
    assert [p.audit_id for p in optimization.tick()] == [fine.id]
    assert optimization.failures == 1


def test_a_run_blocked_by_a_running_plan_is_skipped_not_ended(
    repos: MemoryRepositories,
) -> None:
    clock = ManualClock(1000.0)
    running = ActionPlan(
        audit_id="other",
        actions=(
            Action(
                type=ActionType.MIGRATE,
                parameters={"instance": "z", "source": "hot", "destination": "cool"},
            ),
        ),
        state=PlanState.ONGOING,
    )
    repos.save_plan(running)
    audit = scheduled(1000.0, scope=("hot",))
    repos.save_audit(audit)
    optimization, _ = make(repos, clock)

    assert optimization.tick() == []
    stored = repos.get_audit(audit.id)
    assert stored.state == AuditState.ONGOING and stored.next_run_at == 1300.0
    assert stored.message.startswith("run at 1000 skipped: a running plan already touches")

    repos.set_plan_state(running.id, PlanState.SUCCEEDED)
    clock.advance(300)
    assert [p.audit_id for p in optimization.tick()] == [audit.id]


def test_an_automatic_schedule_launches_each_plan(repos: MemoryRepositories) -> None:
    clock = ManualClock(1000.0)
    audit = scheduled(1000.0, auto_trigger=True)
    repos.save_audit(audit)
    optimization, launched = make(repos, clock)

    (plan,) = optimization.tick()
    assert launched == [plan.id]


def test_anti_ping_pong_applies_to_each_run_without_being_stored(
    repos: MemoryRepositories,
) -> None:
    clock = ManualClock(1000.0)
    audit = scheduled(1000.0)
    repos.save_audit(audit)
    optimization, _ = make(repos, clock)
    (first,) = optimization.tick()
    assert [a.instance for a in first.actions] == ["x"]  # the cheapest move
    # x moved (back onto hot, say) within the window: the next run leaves it alone.
    moved = replace(
        first.actions[0],
        parameters={"instance": "x", "source": "cool", "destination": "hot"},
        state=ActionState.SUCCEEDED,
        finished_at=1100.0,
    )
    repos.save_plan(replace(first, actions=(moved,), state=PlanState.SUCCEEDED))

    clock.advance(300)
    (second,) = optimization.tick()
    assert [a.instance for a in second.actions] == ["y"]
    assert "recently_moved" not in repos.get_audit(audit.id).parameters


def test_configured_and_stored_schedules_run_side_by_side(repos: MemoryRepositories) -> None:
    clock = ManualClock(1000.0)
    audit = scheduled(1000.0)
    repos.save_audit(audit)
    configured = ContinuousAudit("relief", "overload_relief", interval=120)
    optimization, _ = make(repos, clock, configured)

    runs = optimization.tick()
    assert len(runs) == 2
    by_trigger = {repos.get_audit(p.audit_id).trigger for p in runs}
    assert by_trigger == {"continuous relief", "api"}
    clock.advance(120)
    (again,) = optimization.tick()
    assert repos.get_audit(again.audit_id).trigger == "continuous relief"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'decision.db'}"


def test_a_new_service_over_the_same_database_resumes_the_schedules(sqlite_url: str) -> None:
    clock = ManualClock(1000.0)
    database = open_database(sqlite_url)
    store = SqlStore(database, clock)
    fill(store)
    ongoing, paused = scheduled(1000.0), scheduled(1000.0, interval=60.0)
    store.save_audit(ongoing)
    store.save_audit(paused)
    optimization, _ = make(store, clock)
    assert len(optimization.tick()) == 2
    store.change_audit(paused.id, AuditState.SUSPENDED)
    database.close()

    # The server comes back 100 s later: nothing is due before 1300.
    clock.advance(100)
    database = open_database(sqlite_url)
    try:
        store = SqlStore(database, clock)
        restarted, _ = make(store, clock)
        assert restarted.tick() == []
        clock.advance(199)
        assert restarted.tick() == []
        clock.advance(1)
        (plan,) = restarted.tick()
        assert plan.audit_id == ongoing.id
        assert store.get_audit(ongoing.id).next_run_at == 1600.0
        assert store.get_audit(paused.id).state == AuditState.SUSPENDED
    finally:
        database.close()


def test_two_services_over_one_store_run_a_due_audit_once(
    repos: MemoryRepositories, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(1000.0)
    audit = scheduled(1000.0)
    repos.save_audit(audit)
    one, _ = make(repos, clock)
    other, _ = make(repos, clock)

    assert len(one.tick()) == 1
    # The other service read the schedule before the first one claimed the run.
    monkeypatch.setattr(repos, "list_scheduled_audits", lambda: [audit])
    assert other.tick() == []
    assert len(repos.list_plans()) == 1
