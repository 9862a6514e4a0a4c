"""The composition root: the one place that turns Settings into running,
connected components. Nothing else in opendrs picks a concrete adapter."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from opendrs.agent.pipeline import PluginPipeline
from opendrs.agent.plugin import MetricPlugin
from opendrs.agent.plugins.publisher import PublisherPlugin
from opendrs.agent.plugins.watermark import WatermarkPlugin
from opendrs.agent.poller import Agent
from opendrs.api.app import create_app
from opendrs.api.graphs import graphs_router
from opendrs.api.metrics import metrics_router
from opendrs.applier.executor import PlanExecutor
from opendrs.bus import subjects
from opendrs.bus.memory import MemoryBus
from opendrs.cep.engine import CepEngine
from opendrs.cep.rule import ActionKind, Op, RuleAction, ThresholdRule
from opendrs.cloud.sim import SimCloud, build_sim_cloud
from opendrs.config import CepRule, Settings
from opendrs.decision.registry import StrategyRegistry
from opendrs.domain.action import Action, ActionPlan, PlanLimits
from opendrs.domain.alarm import Severity
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import InvalidInput
from opendrs.domain.event import Event
from opendrs.domain.ports import Bus
from opendrs.services.detection import Detection
from opendrs.services.history import HistoryRecorder
from opendrs.services.ingest import SampleIngest
from opendrs.services.inventory import InventorySync
from opendrs.services.loop import StepLoop
from opendrs.services.optimization import Optimization
from opendrs.store.sql.database import Database, open_database
from opendrs.store.rrd.collection import HostArchives
from opendrs.store.sql.repositories import SqlStore

TRACE_DIR_ENV = "OPENDRS_TRACE_DIR"


def find_trace_dir(configured: Path | None) -> Path:
    """The PlanetLab traces: the configured folder, $OPENDRS_TRACE_DIR, or
    `shared/data/planetlab` beside this checkout (or the working directory)."""
    candidates: list[Path] = []
    if configured is not None:
        candidates.append(configured)
    elif os.environ.get(TRACE_DIR_ENV):
        candidates.append(Path(os.environ[TRACE_DIR_ENV]))
    else:
        for start in (Path.cwd(), Path(__file__).resolve()):
            for parent in (start, *start.parents):
                candidates.append(parent / "shared" / "data" / "planetlab")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise InvalidInput(
        "PlanetLab traces not found; set cloud.sim.trace_dir or $OPENDRS_TRACE_DIR",
        source="configuration",
        field="cloud.sim.trace_dir",
    )


def cep_rules(rules: list[CepRule]) -> list[ThresholdRule]:
    return [
        ThresholdRule(
            name=r.name,
            meter=r.meter,
            threshold=r.threshold,
            op=Op(r.op),
            for_samples=r.for_samples,
            clear_threshold=r.clear_threshold,
            clear_samples=r.clear_samples,
            severity=Severity(r.severity),
            actions=tuple(
                RuleAction(
                    kind=ActionKind(a.type),
                    event_type=a.event_type,
                    goal=a.goal,
                    strategy=a.strategy,
                    parameters=dict(a.parameters),
                )
                for a in r.actions
            ),
        )
        for r in rules
    ]


def plan_limits(settings: Settings) -> PlanLimits:
    p = settings.planner
    return PlanLimits(
        max_per_source=p.max_per_source,
        max_per_destination=p.max_per_destination,
        max_parallel=p.max_parallel,
    )


def goal_defaults(settings: Settings) -> dict[str, dict[str, Any]]:
    d = settings.decision
    return {"overload_relief": {"threshold": d.overload_threshold, "target": d.target_threshold}}


def build_agent(
    host: str, cloud: SimCloud, settings: Settings, bus: Bus, clock: ManualClock
) -> Agent:
    plugins: list[MetricPlugin] = []
    for name in settings.agent.plugins:
        if name == "watermark":
            plugins.append(WatermarkPlugin(settings.agent.watermarks))
        elif name == "publisher":
            plugins.append(PublisherPlugin(bus, settings.bus.partitions, f"opendrs.agent/{host}"))
        else:
            raise InvalidInput(
                f"unknown plugin {name!r} (known: watermark, publisher)",
                source="configuration",
                field="agent.plugins",
            )
    pipeline = PluginPipeline(
        plugins, failures_before_disable=settings.agent.plugin_failures_before_disable
    )
    return Agent(host, cloud, pipeline, clock)


@dataclass
class System:
    """Everything the demo process runs, connected; `loop.step()` drives it."""

    settings: Settings
    clock: ManualClock
    cloud: SimCloud
    bus: MemoryBus
    database: Database
    store: SqlStore
    agents: list[Agent]
    executor: PlanExecutor
    detection: Detection
    ingest: SampleIngest
    optimization: Optimization
    loop: StepLoop
    archives: HostArchives | None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()


def trace_day_start(day: str) -> float:
    """Midnight UTC of a trace day (`20110303`), so simulated time reads as a date."""
    try:
        return datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise InvalidInput(
            f"not a day in YYYYMMDD form: {day!r}", source="configuration", field="cloud.sim.day"
        ) from None


def build_system(settings: Settings, *, clock: ManualClock | None = None) -> System:
    """The embedded default: simulated cloud, in-memory bus, SQL store."""
    clock = clock or ManualClock(trace_day_start(settings.cloud.sim.day))
    cloud = build_sim_cloud(settings.cloud.sim, clock, find_trace_dir(settings.cloud.sim.trace_dir))
    bus = MemoryBus()
    database = open_database(settings.database.url)
    store = SqlStore(database, clock)

    def progress(plan: ActionPlan, action: Action | None) -> None:
        data: dict[str, Any] = {"plan": plan.id, "plan_state": plan.state.value}
        if action is not None:
            data |= {"action": action.id, "state": action.state.value, "message": action.message}
        bus.publish(
            subjects.PLAN_PROGRESS,
            Event(
                type="opendrs.plan.progress",
                source="opendrs.applier",
                time=clock.now(),
                subject=plan.id,
                data=data,
            ),
        )

    limits = plan_limits(settings)
    executor = PlanExecutor(store, cloud, clock, limits, on_transition=progress)
    detection = Detection(bus, CepEngine(cep_rules(settings.cep.rules)), store)
    ingest = SampleIngest(bus, store)
    optimization = Optimization(
        bus=bus,
        cluster=store,
        audits=store,
        plans=store,
        registry=StrategyRegistry.discover(),
        limits=limits,
        clock=clock,
        launch=executor.start,
        defaults=goal_defaults(settings),
    )
    archives = (
        HostArchives(settings.history.directory, step=settings.history.step, clock=clock)
        if settings.history.enabled
        else None
    )
    history = HistoryRecorder(bus, archives) if archives is not None else None
    agents = [build_agent(h.name, cloud, settings, bus, clock) for h in cloud.list_hosts()]
    loop = StepLoop(
        clock=clock,
        inventory=InventorySync(cloud, store),
        agents=agents,
        applier=executor,
        step_seconds=settings.demo.step_seconds,
        after_poll=[ingest.flush] + ([history.flush] if history is not None else []),
    )
    system = System(
        settings=settings,
        clock=clock,
        cloud=cloud,
        bus=bus,
        database=database,
        store=store,
        agents=agents,
        executor=executor,
        detection=detection,
        ingest=ingest,
        optimization=optimization,
        loop=loop,
        archives=archives,
    )
    services: list[SampleIngest | Detection | Optimization | HistoryRecorder] = [
        ingest,
        detection,
        optimization,
    ]
    if history is not None:
        services.append(history)
    for service in services:
        service.start()
        system.closers.append(service.stop)
    system.closers += [bus.close, database.close]
    return system


def build_app(system: System, status: Callable[[], dict[str, Any]]) -> FastAPI:
    routers = []
    if system.archives is not None:
        routers = [
            graphs_router(system.archives, clock=system.clock),
            metrics_router(system.archives, clock=system.clock),
        ]
    return create_app(system.store, status=status, extra_routers=routers)
