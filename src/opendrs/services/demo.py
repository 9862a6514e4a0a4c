"""The demo run: steps the whole loop over the simulated cloud and keeps the
figures a person checks it by (alarms, plans, migrations, overloads, losses)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from opendrs.bus import codec, subjects
from opendrs.cloud.sim import SimCloud
from opendrs.domain.action import PlanState
from opendrs.domain.alarm import AlarmState
from opendrs.domain.event import Event
from opendrs.domain.ports import Bus, PlanRepository
from opendrs.services.loop import StepLoop


@dataclass
class DemoSummary:
    hosts: int
    instances: int
    alarms_fired: int
    agent_alarms_fired: int
    plans_executed: int
    plans_failed: int
    migrations: int
    overloaded_host_steps: int
    instances_lost: int
    instances_duplicated: int
    steps: int
    simulated_hours: float
    energy_kwh: float
    wall_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class DemoRun:
    def __init__(
        self,
        *,
        loop: StepLoop,
        cloud: SimCloud,
        bus: Bus,
        plans: PlanRepository,
        overload_threshold: float,
    ) -> None:
        self.loop = loop
        self._cloud = cloud
        self._plans = plans
        self._threshold = overload_threshold / 100.0
        self._instances = {i.name for i in cloud.list_instances()}
        self._start_time = loop.clock.now()
        self._started = time.perf_counter()
        self.alarms_fired = 0
        self.agent_alarms_fired = 0
        self.overloaded_host_steps = 0
        self.overloaded_hosts: list[tuple[int, tuple[str, ...]]] = []
        bus.subscribe(subjects.ALARM_TRANSITIONS, self._on_alarm)
        bus.subscribe(subjects.AGENT_ALARMS, self._on_agent_alarm)
        loop.prime()

    def _on_alarm(self, event: Event) -> None:
        if codec.transition_from_dict(event.data).current == AlarmState.ALARM:
            self.alarms_fired += 1

    def _on_agent_alarm(self, event: Event) -> None:
        if codec.transition_from_dict(event.data).current == AlarmState.ALARM:
            self.agent_alarms_fired += 1

    def step(self) -> None:
        self.loop.step()
        hot = tuple(sorted(self._cloud.overloaded_hosts(self._threshold)))
        self.overloaded_host_steps += len(hot)
        self.overloaded_hosts.append((self.loop.steps, hot))

    def run(self, steps: int, on_step: Callable[[int], None] | None = None) -> DemoSummary:
        for _ in range(steps):
            self.step()
            if on_step is not None:
                on_step(self.loop.steps)
        return self.summary()

    def status(self) -> dict[str, Any]:
        """What the dashboard's header shows."""
        summary = self.summary()
        return {
            "time": self.loop.clock.now(),
            "step": self.loop.steps,
            "mode": "demo",
            "alarms fired": summary.alarms_fired,
            "migrations": summary.migrations,
            "plans executed": summary.plans_executed,
            "overloaded hosts": len(self.overloaded_hosts[-1][1]) if self.overloaded_hosts else 0,
            "power W": round(self._cloud.power_watts(), 1),
        }

    def summary(self) -> DemoSummary:
        placed = [i.name for i in self._cloud.list_instances()]
        plans = self._plans.list_plans(limit=1_000_000)
        return DemoSummary(
            hosts=len(self._cloud.list_hosts()),
            instances=len(self._instances),
            alarms_fired=self.alarms_fired,
            agent_alarms_fired=self.agent_alarms_fired,
            plans_executed=sum(
                1 for p in plans if p.state in (PlanState.SUCCEEDED, PlanState.FAILED)
            ),
            plans_failed=sum(1 for p in plans if p.state == PlanState.FAILED),
            migrations=self._cloud.migrations_completed,
            overloaded_host_steps=self.overloaded_host_steps,
            instances_lost=len(self._instances - set(placed)),
            instances_duplicated=len(placed) - len(set(placed)),
            steps=self.loop.steps,
            simulated_hours=round((self.loop.clock.now() - self._start_time) / 3600.0, 3),
            energy_kwh=round(self._cloud.energy_joules / 3.6e6, 3),
            wall_seconds=round(time.perf_counter() - self._started, 3),
        )
