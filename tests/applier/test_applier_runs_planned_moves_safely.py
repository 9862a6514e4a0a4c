"""The planner's plans run by the executor on a fake cloud whose migrations take a
random number of polls: after every round, each host holds what is on it plus what
is migrating to it within capacity, anti-affinity partners never meet, limits hold,
and the cloud ends in the target placement."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes.driver import FakeDriver
from fakes.repositories import MemoryRepositories
from fakes.scenarios import GROUP, Scenario, scenarios
from opendrs.applier import PlanExecutor
from opendrs.domain.action import FINAL_PLAN_STATES, PlanLimits, PlanState
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import PlanningError
from opendrs.planner import build_plan, capacity, usage


def check_cloud(scenario: Scenario, driver: FakeDriver) -> None:
    cluster = scenario.cluster
    present: dict[str, list[str]] = {h: [] for h in cluster.hosts}
    for name, where in driver.placement.items():
        present[where].append(name)
    for op in driver.running():
        present[op.destination].append(op.instance)
    for host, names in present.items():
        load = [0.0, 0.0]
        for name in names:
            load = [x + s for x, s in zip(load, usage(cluster.instances[name]), strict=True)]
        cap = capacity(cluster.hosts[host])
        assert all(x <= c + 1e-9 for x, c in zip(load, cap, strict=True)), (
            f"{host} holds {names}: {load} > {cap}"
        )
        spread = [n for n in names if GROUP in cluster.instances[n].groups]
        assert len(spread) <= 1, f"anti-affinity partners {spread} meet on {host}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(scenarios(host_changes=False), st.data())
def test_planned_moves_run_within_capacity_and_limits(
    scenario: Scenario, data: st.DataObject
) -> None:
    limits = PlanLimits(
        max_per_source=data.draw(st.integers(1, 2)),
        max_per_destination=data.draw(st.integers(1, 2)),
        max_parallel=data.draw(st.integers(1, 4)),
    )
    try:
        plan = build_plan(scenario.solution, scenario.cluster, limits, "audit", 0.0)
    except PlanningError:
        return
    if plan.state == PlanState.SUCCEEDED:
        return
    repo = MemoryRepositories()
    repo.save_plan(plan)
    driver = FakeDriver({n: i.host for n, i in scenario.cluster.instances.items()})
    driver.polls_for = {
        m.instance: data.draw(st.integers(1, 4), label=f"polls {m.instance}")
        for m in scenario.solution.moves
    }
    driver.polls = data.draw(st.integers(1, 4), label="polls of a second leg")
    executor = PlanExecutor(repo, driver, ManualClock())
    executor.start(plan.id)
    for _ in range(200):
        state = executor.advance(plan.id).state
        check_cloud(scenario, driver)
        if state in FINAL_PLAN_STATES:
            break
    assert state == PlanState.SUCCEEDED
    assert driver.placement == scenario.target
    # A move planned through a temporary host is two migrations of its VM.
    assert driver.moved == Counter(a.instance for a in plan.actions if a.instance)
    assert driver.peak_total <= limits.max_parallel
    assert max(driver.peak_source.values(), default=0) <= limits.max_per_source
    assert max(driver.peak_destination.values(), default=0) <= limits.max_per_destination
