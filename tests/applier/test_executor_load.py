"""The executor's count of migrations in flight across running plans: limits and the
bandwidth budget hold over several plans sharing hosts, and the shortcut that
reuses a plan's load share while the repository hands back the same plan object
journals exactly what a recount every round journals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from fakes.driver import FakeDriver
from fakes.plans import migrate
from opendrs.applier import PlanExecutor
from opendrs.cloud.sim.cloudsim.plans import MemoryPlans
from opendrs.domain.action import (
    FINAL_PLAN_STATES,
    Action,
    ActionPlan,
    ActionState,
    PlanLimits,
    PlanState,
)
from opendrs.domain.clock import ManualClock

HOSTS = ("a", "b", "c", "d")


class FreshCopies(MemoryPlans):
    """MemoryPlans that hands back a new plan object on every read, so nothing the
    executor remembers by object identity is ever reused."""

    def get_plan(self, plan_id: str) -> ActionPlan:
        plan = super().get_plan(plan_id)
        return plan.with_actions(tuple(plan.actions))

    def list_plans(
        self, states: Sequence[PlanState] | None = None, limit: int = 100
    ) -> list[ActionPlan]:
        return [p.with_actions(tuple(p.actions)) for p in super().list_plans(states, limit)]


class JournalingPlans(MemoryPlans):
    def __init__(self) -> None:
        super().__init__()
        self.journal: list[Action] = []

    def journal_action(self, action: Action) -> None:
        super().journal_action(action)
        self.journal.append(action)


class JournalingCopies(FreshCopies, JournalingPlans):
    pass


@dataclass
class Workload:
    plans: list[list[tuple[str, str, str, int, int]]]  # (vm, source, destination, MB, polls)
    limits: PlanLimits
    budget: int


@st.composite
def workloads(draw: st.DrawFn) -> Workload:
    count = draw(st.integers(1, 4))
    plans: list[list[tuple[str, str, str, int, int]]] = []
    vm = 0
    for _ in range(count):
        moves = []
        for _ in range(draw(st.integers(1, 6))):
            source = draw(st.sampled_from(HOSTS))
            destination = draw(st.sampled_from([h for h in HOSTS if h != source]))
            vm += 1
            moves.append(
                (
                    f"vm{vm}",
                    source,
                    destination,
                    draw(st.sampled_from([512, 1024, 2048, 4096])),
                    draw(st.integers(1, 4)),
                )
            )
        plans.append(moves)
    limits = PlanLimits(
        max_per_source=draw(st.integers(1, 3)),
        max_per_destination=draw(st.integers(1, 3)),
        max_parallel=draw(st.integers(1, 5)),
    )
    return Workload(plans, limits, draw(st.sampled_from([0, 3000, 6000])))


def _plan(index: int, moves: list[tuple[str, str, str, int, int]], budget: int) -> ActionPlan:
    actions = []
    for vm, source, destination, memory_mb, _ in moves:
        action = migrate(vm, source, destination)
        actions.append(
            Action(action.type, {**action.parameters, "memory_mb": memory_mb}, id=action.id)
        )
    return ActionPlan(
        audit_id="audit",
        actions=tuple(actions),
        created_at=float(index),
        id=f"plan-{index}",
        limits=PlanLimits(bandwidth_mb_per_minute=budget),
    )


def _run(
    work: Workload, repo: JournalingPlans
) -> tuple[list[tuple[object, ...]], FakeDriver, list[tuple[float, int, float]]]:
    placement = {vm: source for moves in work.plans for vm, source, _, _, _ in moves}
    clock = ManualClock(0.0)
    driver = FakeDriver(placement)
    driver.polls_for = {vm: polls for moves in work.plans for vm, _, _, _, polls in moves}
    memory = {vm: mb for moves in work.plans for vm, _, _, mb, _ in moves}
    owner = {vm: n for n, moves in enumerate(work.plans) for vm, _, _, _, _ in moves}
    starts: list[tuple[float, int, float]] = []
    original = driver.start_migration

    def start(instance: str, destination: str, live: bool = True) -> str:
        starts.append((clock.now(), owner[instance], float(memory[instance])))
        return original(instance, destination, live)

    driver.start_migration = start  # type: ignore[method-assign]
    executor = PlanExecutor(repo, driver, clock, work.limits)
    for index, moves in enumerate(work.plans):
        repo.save_plan(_plan(index, moves, work.budget))
        executor.submit(f"plan-{index}")
    for _ in range(200):
        clock.advance(20.0)
        executor.advance_all()
        if all(p.state in FINAL_PLAN_STATES for p in repo.list_plans(limit=100)):
            break
    journal = [
        (a.plan_id, a.id, a.state, a.message, dict(a.parameters), a.started_at, a.finished_at)
        for a in repo.journal
    ]
    return journal, driver, starts


@settings(max_examples=60, deadline=None)
@given(workloads())
def test_limits_and_budget_hold_across_plans_and_the_shortcut_journals_the_same(
    work: Workload,
) -> None:
    journal, driver, starts = _run(work, JournalingPlans())
    recounted, _, _ = _run(work, JournalingCopies())
    assert journal == recounted

    limits = work.limits
    assert driver.peak_total <= limits.max_parallel
    assert all(n <= limits.max_per_source for n in driver.peak_source.values())
    assert all(n <= limits.max_per_destination for n in driver.peak_destination.values())
    if work.budget:
        # Over every plan, ended ones included: a start counts for a minute.
        for n, (at, _plan_id, memory_mb) in enumerate(starts):
            earlier = sum(mb for t, _, mb in starts[:n] if t >= at - 60.0)
            # One migration over the budget may start when nothing else did.
            assert earlier == 0 or earlier + memory_mb <= work.budget
    moved = [a for a in journal if a[2] == ActionState.SUCCEEDED]
    assert len(moved) == sum(len(m) for m in work.plans)
    assert all(n == 1 for n in driver.started.values())
