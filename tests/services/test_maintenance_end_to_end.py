"""Maintenance and the way back, wired as `opendrs demo` wires it (SQL store,
simulated cloud, applier, bus) under manual time: the host's evacuation records
where each instance came from, enabling the host with `bring_back` returns the
same instances, and their marks are cleared."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from opendrs.bus import subjects
from opendrs.config import Settings
from opendrs.domain.action import FINAL_PLAN_STATES, ActionPlan, ActionState, ActionType
from opendrs.domain.clock import ManualClock
from opendrs.domain.event import Event
from opendrs.domain.host import HostState
from opendrs.wiring import System, build_system


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    settings = Settings.model_validate(
        {
            "database": {"url": f"sqlite:///{tmp_path}/maintenance.db"},
            "history": {"directory": str(tmp_path / "history")},
            "cloud": {"sim": {"hosts": 6, "instances": 24}},
        }
    )
    built = build_system(settings, clock=ManualClock())
    built.loop.prime()
    yield built
    built.close()


def announce(system: System, host: str, **data: object) -> None:
    system.bus.publish(
        subjects.HOST_STATE,
        Event(
            type="test",
            source="operator",
            time=system.clock.now(),
            subject=host,
            data={"host": host, **data},
        ),
    )


def run_until_done(system: System, strategy: str) -> ActionPlan:
    """Step the loop until the plan of the newest audit of `strategy` has ended."""
    for _ in range(30):
        system.loop.step()
        audits = [a for a in system.store.list_audits(limit=1000) if a.strategy == strategy]
        plans = [
            p for p in system.store.list_plans(limit=1000) if audits and p.audit_id == audits[0].id
        ]
        if plans and plans[0].state in FINAL_PLAN_STATES:
            return plans[0]
    raise AssertionError(f"no {strategy} plan ended in 30 steps")


def migrated(plan: ActionPlan) -> set[str]:
    return {
        str(a.instance)
        for a in plan.actions
        if a.type == ActionType.MIGRATE and a.state == ActionState.SUCCEEDED
    }


def test_maintenance_then_bring_back_returns_the_same_instances(system: System) -> None:
    counts = Counter(i.host for i in system.cloud.list_instances())
    host = max(sorted(counts), key=lambda h: counts[h])
    residents = {i.name for i in system.cloud.list_instances() if i.host == host}
    assert residents

    announce(system, host, state="maintenance")
    evacuation = run_until_done(system, "host_maintenance")
    moved = migrated(evacuation)
    assert moved and moved <= residents
    marks = system.store.list_evacuations(host=host)
    assert {m.instance for m in marks} == moved
    assert {(m.plan_id, m.audit_id) for m in marks} == {(evacuation.id, evacuation.audit_id)}
    assert all(system.cloud.locate(name) != host for name in moved)

    system.cloud.set_host_state(host, HostState.ENABLED)
    announce(system, host, state="enabled", bring_back=True)
    way_back = run_until_done(system, "host_return")
    assert migrated(way_back) == moved
    assert all(a.destination == host for a in way_back.actions if a.type == ActionType.MIGRATE)
    assert system.store.list_evacuations(host=host) == []
