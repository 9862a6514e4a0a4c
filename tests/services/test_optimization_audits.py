"""The optimisation service beyond alarms: continuous audits on a schedule (newest
plan supersedes the last), anti-ping-pong hints from recent plans, evacuation on
a host entering maintenance, and a failing schedule that does not stop others."""

from __future__ import annotations

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
from opendrs.domain.audit import Audit
from opendrs.domain.clock import ManualClock
from opendrs.domain.event import Event
from opendrs.domain.host import Host
from opendrs.domain.instance import Flavor, Instance
from opendrs.services.optimization import ContinuousAudit, Optimization, recent_moves

HOT = {"threshold": 80, "target": 75}


def node(name: str, vcpus: int) -> Host:
    return Host(name=name, vcpus=vcpus, memory_mb=65536, local_gb=500)


def cores(name: str, host: str, used: float, memory_mb: int = 2048) -> Instance:
    return Instance(
        name, host, Flavor("f", 8, memory_mb, 10), metrics={"cpu_util": 100.0 * used / 8}
    )


def event(subject: str, **data: object) -> Event:
    return Event(type="test", source="test", subject=subject, time=0.0, data=data)


def make(
    repos: MemoryRepositories, clock: ManualClock, *schedules: ContinuousAudit
) -> tuple[Optimization, list[str]]:
    launched: list[str] = []
    optimization = optimization_over(
        repos, clock, launch=launched.append, ping_pong_window=600.0, continuous=schedules
    )
    return optimization, launched


@pytest.fixture
def repos() -> MemoryRepositories:
    repos = MemoryRepositories()
    repos.upsert_hosts([node("hot", vcpus=10), node("cool", vcpus=16), node("spare", vcpus=16)])
    # hot runs 9 of 10 cores: one of x (2 cores) or y (1.5 cores) must go.
    repos.upsert_instances(
        [
            cores("x", "hot", 2.0, memory_mb=1024),
            cores("y", "hot", 1.5, memory_mb=4096),
            cores("z", "hot", 5.5, memory_mb=8192),
        ]
    )
    return repos


def test_continuous_audits_run_on_their_interval_and_supersede(repos: MemoryRepositories) -> None:
    clock = ManualClock(1000.0)
    schedule = ContinuousAudit("relief", "overload_relief", interval=300, parameters=HOT)
    optimization, launched = make(repos, clock, schedule)
    first = optimization.tick()
    assert len(first) == 1 and first[0].state == PlanState.RECOMMENDED
    assert launched == []  # manual: the plan waits for approval
    clock.advance(299)
    assert optimization.tick() == []
    clock.advance(1)
    second = optimization.tick()
    assert len(second) == 1
    assert repos.get_plan(first[0].id).state == PlanState.SUPERSEDED
    audit = repos.get_audit(second[0].audit_id)
    assert audit.audit_type.value == "continuous" and audit.trigger == "continuous relief"


def test_a_failing_schedule_is_counted_and_the_others_run(repos: MemoryRepositories) -> None:
    clock = ManualClock(0.0)
    broken = ContinuousAudit("broken", "thermal", interval=60)
    fine = ContinuousAudit("fine", "overload_relief", interval=60, parameters=HOT)
    optimization, _ = make(repos, clock, broken, fine)
    plans = optimization.tick()
    assert len(plans) == 1
    assert optimization.failures == 1


def migrated(instance: str, finished_at: float) -> ActionPlan:
    action = Action(
        type=ActionType.MIGRATE,
        parameters={"instance": instance, "source": "cool", "destination": "hot"},
        state=ActionState.SUCCEEDED,
        finished_at=finished_at,
    )
    return ActionPlan(audit_id="old", actions=(action,), state=PlanState.SUCCEEDED)


def test_recent_moves_reads_finished_and_running_migrations() -> None:
    plans = [migrated("x", 900.0), migrated("y", 100.0)]
    assert recent_moves(plans, since=500.0) == (("x",), {"cool": 1, "hot": 1})


def test_an_instance_moved_recently_is_not_moved_again(repos: MemoryRepositories) -> None:
    clock = ManualClock(1000.0)
    repos.save_plan(migrated("x", 900.0))
    optimization, _ = make(repos, clock)
    optimization.on_request(
        event("hot", goal="overload_relief", parameters=HOT, auto_trigger=False)
    )
    plan = next(p for p in repos.list_plans() if p.audit_id != "old")
    assert [a.instance for a in plan.actions] == ["y"]
    audit = repos.get_audit(plan.audit_id)
    assert audit.parameters["recently_moved"] == ["x"]
    # Once the window has passed, the cheapest move (x, 1 GB) is back on the table.
    clock.advance(600)
    again = optimization.run(Audit(goal="overload_relief", strategy="", parameters=HOT))
    assert again is not None and [a.instance for a in again.actions] == ["x"]


def test_a_host_entering_maintenance_is_evacuated(repos: MemoryRepositories) -> None:
    clock = ManualClock(0.0)
    optimization, launched = make(repos, clock)
    optimization.on_host_state(event("hot", state="maintenance"))
    (plan,) = repos.list_plans()
    assert {a.instance for a in plan.actions if a.type == ActionType.MIGRATE} == {"x", "y", "z"}
    assert any(a.parameters.get("state") == "maintenance" for a in plan.actions)
    assert launched == [plan.id]
    optimization.on_host_state(event("cool", state="disabled"))
    assert len(repos.list_plans()) == 1  # other states start nothing


def test_continuous_audits_come_from_the_configuration() -> None:
    from opendrs.config import DecisionSettings
    from opendrs.services.optimization import continuous_audits

    settings = DecisionSettings.model_validate(
        {
            "continuous_audits": [
                {
                    "name": "b",
                    "goal": "workload_balancing",
                    "interval_seconds": 600,
                    "scope": ["zone:az1"],
                }
            ]
        }
    )
    (schedule,) = continuous_audits(settings.continuous_audits)
    assert (schedule.name, schedule.goal, schedule.interval, schedule.scope) == (
        "b",
        "workload_balancing",
        600.0,
        ("zone:az1",),
    )
