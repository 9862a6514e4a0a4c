"""The composition root: the one place that turns Settings into running,
connected components. Nothing else in opendrs picks a concrete adapter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI

from opendrs.agent.assembly import build_agent
from opendrs.agent.poller import Agent
from opendrs.api.app import create_app
from opendrs.api.graphs import graphs_router
from opendrs.api.metrics import metrics_router
from opendrs.applier.executor import PlanExecutor
from opendrs.applier.policy import policy_from_settings
from opendrs.applier.progress import publishing_hook
from opendrs.bus import subjects
from opendrs.bus.memory import MemoryBus
from opendrs.cep.engine import CepEngine
from opendrs.cep.rule import ThresholdRule
from opendrs.cloud.sim import SimCloud, build_sim_cloud
from opendrs.cloud.sim.traces import find_trace_dir
from opendrs.config import Settings
from opendrs.decision.registry import StrategyRegistry
from opendrs.domain.action import PlanLimits
from opendrs.domain.clock import Clock, ManualClock
from opendrs.domain.errors import InvalidInput
from opendrs.domain.ports import Bus
from opendrs.notify.assembly import build_dispatcher
from opendrs.rulefiles.schema import load_rule_file, rules_from_specs
from opendrs.services.detection import Detection
from opendrs.services.history import HistoryRecorder
from opendrs.services.ingest import SampleIngest
from opendrs.services.inventory import InventorySync
from opendrs.services.loop import StepLoop
from opendrs.services.optimization import Optimization, continuous_audits
from opendrs.store.rrd.collection import HostArchives
from opendrs.store.sql.cep_state import CepStateStore
from opendrs.store.sql.database import Database, open_database
from opendrs.store.sql.repositories import SqlStore


def configured_rules(settings: Settings) -> list[ThresholdRule]:
    """The rules of `cep.rules` and of every `cep.rule_files` file."""
    seen: dict[str, str] = {}
    inline = rules_from_specs(
        settings.cep.rules, source="configuration", node=None, at=("cep", "rules"), seen=seen
    )
    # One namespace: a name defined inline and in a file is an error naming both.
    return inline + [r for path in settings.cep.rule_files for r in load_rule_file(path, seen)]


def build_detection(
    settings: Settings, bus: Bus, database: Database, clock: Clock, *, consume: bool = True
) -> Detection:
    """The CEP stage with its persisted state and notifiers (demo and `server --role cep`)."""
    return Detection(
        bus,
        CepEngine(configured_rules(settings)),
        SqlStore(database, clock),
        clock=clock,
        state=CepStateStore(database, clock),
        dispatcher=build_dispatcher(settings.cep.notify, bus, clock),
        consume=consume,
    )


def plan_limits(settings: Settings) -> PlanLimits:
    p = settings.planner
    return PlanLimits(
        max_per_source=p.max_per_source,
        max_per_destination=p.max_per_destination,
        max_parallel=p.max_parallel,
        bandwidth_mb_per_minute=p.bandwidth_mb_per_minute,
    )


def goal_defaults(settings: Settings) -> dict[str, dict[str, Any]]:
    d = settings.decision
    return {"overload_relief": {"threshold": d.overload_threshold, "target": d.target_threshold}}


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

    limits = plan_limits(settings)
    executor = PlanExecutor(
        store,
        cloud,
        clock,
        limits,
        on_transition=publishing_hook(bus, subjects.PLAN_PROGRESS, clock),
        policy=policy_from_settings(settings.applier),
    )
    detection = build_detection(settings, bus, database, clock)
    ingest = SampleIngest(bus, store)
    optimization = Optimization(
        bus=bus,
        cluster=store,
        audits=store,
        plans=store,
        registry=StrategyRegistry.discover(),
        limits=limits,
        clock=clock,
        launch=executor.submit,
        defaults=goal_defaults(settings),
        ping_pong_window=settings.decision.ping_pong_window_seconds,
        continuous=continuous_audits(settings.decision.continuous_audits),
        evacuations=store,
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
        inventory=InventorySync(cloud, store, bus, clock),
        agents=agents,
        applier=executor,
        step_seconds=settings.demo.step_seconds,
        after_poll=[
            ingest.flush,
            *([history.flush] if history is not None else []),
            detection.tick,
            optimization.tick,
        ],
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
    # audits made through the API are timed (and continuous ones scheduled) in the
    # time the optimization service runs them in: simulated in the demo
    return create_app(system.store, status=status, extra_routers=routers, clock=system.clock)
