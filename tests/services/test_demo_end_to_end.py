"""The whole loop, wired as `opendrs demo` wires it, on a small simulated cloud
under manual time: an overload appears, an alarm fires, an audit plans live
migrations, the applier carries them out, the host ends under its threshold,
and no VM is lost or duplicated."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendrs.bus import subjects
from opendrs.config import Settings
from opendrs.domain.action import ActionState, ActionType, PlanState
from opendrs.domain.alarm import AlarmState
from opendrs.domain.clock import ManualClock
from opendrs.domain.event import Event
from opendrs.services.demo import DemoRun
from opendrs.wiring import build_system

STEPS = 40


def small_settings(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": f"sqlite:///{tmp_path}/e2e.db"},
            "history": {"directory": str(tmp_path / "history")},
            "cloud": {"sim": {"hosts": 11, "instances": 50}},
        }
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory):
    settings = small_settings(tmp_path_factory.mktemp("e2e"))
    system = build_system(settings, clock=ManualClock())
    run = DemoRun(
        loop=system.loop,
        cloud=system.cloud,
        bus=system.bus,
        plans=system.store,
        overload_threshold=settings.decision.overload_threshold,
    )
    relieved: list[tuple[str, float]] = []

    def on_progress(event: Event) -> None:
        # The host a plan relieved must be under its threshold the moment it ends.
        if event.data.get("plan_state") != PlanState.SUCCEEDED or "action" in event.data:
            return
        plan = system.store.get_plan(event.data["plan"])
        for action in plan.actions:
            if action.type == ActionType.MIGRATE and action.source:
                relieved.append((action.source, system.cloud.host_demand(action.source)))

    system.bus.subscribe(subjects.PLAN_PROGRESS, on_progress)
    summary = run.run(STEPS)
    yield system, run, summary, relieved
    system.close()


def test_an_overload_is_detected_planned_and_relieved(finished_run) -> None:
    system, _, summary, relieved = finished_run
    assert summary.overloaded_host_steps > 0
    assert summary.agent_alarms_fired >= 1
    assert summary.alarms_fired >= 1
    assert summary.plans_executed >= 1
    assert summary.migrations >= 1
    assert relieved, "no finished plan moved anything"
    threshold = system.settings.decision.overload_threshold / 100.0
    for host, demand in relieved:
        assert demand <= threshold, f"{host} still at {demand:.0%} after its plan"


def test_every_vm_is_on_exactly_one_host_afterwards(finished_run) -> None:
    system, _, summary, _ = finished_run
    assert summary.instances_lost == 0
    assert summary.instances_duplicated == 0
    assert summary.instances == 50
    names = [i.name for i in system.cloud.list_instances()]
    assert sorted(names) == sorted(set(names)) and len(names) == 50
    # The SQL model agrees with the cloud on where each VM is.
    model = {i.name: i.host for i in system.store.list_instances()}
    assert model == {i.name: i.host for i in system.cloud.list_instances()}


def test_the_journal_and_the_alarm_history_tell_the_story(finished_run) -> None:
    system, _, _, _ = finished_run
    history = system.store.history(limit=10_000)
    sources = {t.source for t in history if t.current == AlarmState.ALARM}
    assert any(s.startswith("agent:") for s in sources), "no watermark alarm recorded"
    assert "cep" in {s.split(":")[0] for s in sources} or any("cep" in s for s in sources)
    audits = system.store.list_audits(limit=1000)
    assert audits and all(a.goal == "overload_relief" for a in audits)
    plans = system.store.list_plans(limit=1000)
    migrations = [a for p in plans for a in p.actions if a.type == ActionType.MIGRATE]
    assert migrations
    for plan in plans:
        journal = system.store.journal(plan.id)
        for action in plan.actions:
            states = [e.state for e in journal if e.action_id == action.id]
            if action.state == ActionState.SUCCEEDED:
                assert states[0] == ActionState.ONGOING and states[-1] == ActionState.SUCCEEDED
