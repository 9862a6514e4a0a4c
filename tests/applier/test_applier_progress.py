"""Progress events: one per journaled transition, with counts a progress bar needs."""

from __future__ import annotations

from fakes.driver import FakeDriver
from fakes.plans import host_state, migrate, run_to_end, saved_plan
from fakes.repositories import MemoryRepositories
from opendrs.applier import PlanExecutor
from opendrs.applier.progress import EVENT_TYPE, publishing_hook
from opendrs.bus.memory import MemoryBus
from opendrs.domain.clock import ManualClock
from opendrs.domain.event import Event


def test_every_transition_is_published_with_the_plans_counts() -> None:
    bus = MemoryBus()
    seen: list[Event] = []
    bus.subscribe("plans.progress", seen.append)
    clock = ManualClock(100.0)
    repo = MemoryRepositories()
    x = migrate("x", "a", "b")
    plan = saved_plan(repo, x, host_state("a", "off", x))
    executor = PlanExecutor(
        repo,
        FakeDriver({"x": "a"}, polls=1),
        clock,
        on_transition=publishing_hook(bus, "plans.progress", clock),
    )
    executor.start(plan.id)
    run_to_end(executor, plan.id)
    bus.drain()
    assert {e.type for e in seen} == {EVENT_TYPE}
    assert all(e.subject == plan.id and e.time == 100.0 for e in seen)
    moved = [e.data for e in seen if e.data.get("action")]
    assert [(d["description"], d["state"]) for d in moved] == [
        ("migrate x (a→b)", "ONGOING"),
        ("migrate x (a→b)", "SUCCEEDED"),
        ("a→off", "ONGOING"),
        ("a→off", "SUCCEEDED"),
    ]
    assert moved[0]["running"] == ["migrate x (a→b)"]
    last = seen[-1].data
    assert (last["plan_state"], last["finished"], last["total"]) == ("SUCCEEDED", 2, 2)
    assert last["counts"] == {"SUCCEEDED": 2}
