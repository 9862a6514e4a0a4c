"""The composition root: the one place that turns Settings into running,
connected components. Nothing else in opendrs picks a concrete adapter."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI

from opendrs.agent.assembly import build_agent
from opendrs.agent.poller import Agent
from opendrs.api.app import create_app
from opendrs.api.graphs import graphs_router
from opendrs.api.metrics import metrics_router
from opendrs.api.serving import ApiServing
from opendrs.applier.executor import PlanExecutor
from opendrs.applier.inventory_view import InventoryView
from opendrs.applier.policy import policy_from_settings
from opendrs.applier.progress import publishing_hook
from opendrs.bus import subjects
from opendrs.bus.memory import MemoryBus
from opendrs.bus.transports import open_bus
from opendrs.cep.engine import CepEngine
from opendrs.cep.rule import ThresholdRule
from opendrs.cloud.bmc_settings import power_wait, redfish_endpoints
from opendrs.cloud.libvirt_actions import LibvirtActions
from opendrs.cloud.libvirt_inventory import LibvirtInventory
from opendrs.cloud.openstack import connect as openstack_connect
from opendrs.cloud.openstack_inventory import OpenstackInventory
from opendrs.cloud.openstack_live import LiveNovaActions
from opendrs.cloud.redfish import RedfishPower
from opendrs.cloud.sim import SimCloud, build_sim_cloud
from opendrs.cloud.sim.traces import find_trace_dir
from opendrs.config import Settings
from opendrs.decision.registry import StrategyRegistry
from opendrs.domain.action import PlanLimits, PlanState
from opendrs.domain.clock import Clock, ManualClock, WallClock
from opendrs.domain.errors import InvalidInput
from opendrs.domain.ports import (
    Bus,
    CloudActions,
    CloudInventory,
    ClusterRepository,
    LiveView,
    PlanRepository,
)
from opendrs.notify.assembly import build_dispatcher
from opendrs.rulefiles.schema import load_rule_file, rules_from_specs
from opendrs.services.detection import Detection
from opendrs.services.history import HistoryRecorder
from opendrs.services.ingest import SampleIngest
from opendrs.services.inventory import InventorySync
from opendrs.services.loop import StepLoop
from opendrs.services.optimization import Optimization, continuous_audits
from opendrs.services.server_loop import RoleLoop
from opendrs.store.rrd.collection import HostArchives
from opendrs.store.sql.cep_state import CepStateStore
from opendrs.store.sql.database import Database, open_database
from opendrs.store.sql.repositories import SqlStore

log = logging.getLogger(__name__)


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


def build_power_control(settings: Settings) -> RedfishPower | None:
    """The BMCs of `power.hosts` (None when no host has one)."""
    if not settings.power.hosts:
        return None
    return RedfishPower(redfish_endpoints(settings.power), power_wait(settings.power))


def build_libvirt_actions(
    settings: Settings, hosts: Mapping[str, str], states: ClusterRepository
) -> LibvirtActions:
    """libvirt's actions over `hosts` (name -> libvirt URI), powering hosts off and
    on through their BMCs where `power.hosts` names them."""
    return LibvirtActions(
        hosts, states, power=build_power_control(settings), graceful_off=settings.power.graceful
    )


def goal_defaults(settings: Settings) -> dict[str, dict[str, Any]]:
    d = settings.decision
    return {"overload_relief": {"threshold": d.overload_threshold, "target": d.target_threshold}}


def build_executor(
    settings: Settings,
    plans: PlanRepository,
    driver: CloudActions,
    bus: Bus,
    clock: Clock,
    live: LiveView | None = None,
) -> PlanExecutor:
    """The applier, publishing each transition on the bus."""
    return PlanExecutor(
        plans,
        driver,
        clock,
        plan_limits(settings),
        on_transition=publishing_hook(bus, subjects.PLAN_PROGRESS, clock),
        policy=policy_from_settings(settings.applier),
        live=live,
    )


def build_optimization(
    settings: Settings,
    bus: Bus,
    store: SqlStore,
    registry: StrategyRegistry,
    clock: Clock,
    launch: Callable[[str], object],
) -> Optimization:
    """The decision service over `store`; `launch` is what an automatic audit's
    plan is handed to."""
    return Optimization(
        bus=bus,
        cluster=store,
        audits=store,
        plans=store,
        registry=registry,
        limits=plan_limits(settings),
        clock=clock,
        launch=launch,
        defaults=goal_defaults(settings),
        ping_pong_window=settings.decision.ping_pong_window_seconds,
        continuous=continuous_audits(settings.decision.continuous_audits),
        evacuations=store,
    )


def history_routers(archives: HostArchives | None, clock: Clock) -> list[APIRouter]:
    """The graph and /metrics routes over the history files, if history is kept."""
    if archives is None:
        return []
    return [graphs_router(archives, clock=clock), metrics_router(archives, clock=clock)]


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

    executor = build_executor(settings, store, cloud, bus, clock, live=InventoryView(cloud))
    detection = build_detection(settings, bus, database, clock)
    ingest = SampleIngest(bus, store)
    optimization = build_optimization(
        settings, bus, store, StrategyRegistry.discover(), clock, launch=executor.submit
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
    routers = history_routers(system.archives, system.clock)
    # audits made through the API are timed (and continuous ones scheduled) in the
    # time the optimization service runs them in: simulated in the demo
    return create_app(system.store, status=status, extra_routers=routers, clock=system.clock)


# --- `opendrs server` -------------------------------------------------------

# The roles build_server composes; `cep` runs through commands.server.run_cep.
SERVER_ROLES = ("api", "inventory", "ingest", "decision", "applier")


@dataclass
class Server:
    """The roles of one `opendrs server` process, connected: `start` runs them on
    the wall clock, `stop` ends their rounds and closes what they opened."""

    settings: Settings
    roles: tuple[str, ...]
    store: SqlStore
    loops: list[RoleLoop]
    api: ApiServing | None = None
    starters: list[Callable[[], object]] = field(default_factory=list)
    closers: list[Callable[[], object]] = field(default_factory=list)
    counters: dict[str, Callable[[], object]] = field(default_factory=dict)

    def start(self) -> None:
        for start in self.starters:
            start()
        for loop in self.loops:
            loop.start()
        if self.api is not None:
            self.api.start()

    def stop(self) -> bool:
        """True when every role finished its round within `server.stop_timeout_seconds`."""
        timeout = self.settings.server.stop_timeout_seconds
        for loop in self.loops:
            loop.request_stop()
        clean = all([loop.stop(timeout) for loop in self.loops])
        if self.api is not None:
            clean = self.api.stop(timeout) and clean
        for close in reversed(self.closers):
            try:
                close()
            except Exception:
                clean = False
                log.exception("closing %s failed while stopping", close)
        return clean

    def status(self) -> dict[str, Any]:
        """What GET /v1/status reports: the roles, each loop's rounds and failures."""
        return {
            "process": "server",
            "roles": list(self.roles),
            "loops": {loop.name: loop.status() for loop in self.loops},
            **{name: count() for name, count in self.counters.items()},
        }


@dataclass
class _CloudSide:
    """What the inventory and applier roles drive: libvirt hosts, or one
    connection to an OpenStack cloud shared by both roles."""

    hosts: Mapping[str, str] = field(default_factory=dict)
    openstack: Any = None


def _cloud_side(settings: Settings) -> _CloudSide:
    if settings.cloud.driver == "openstack":
        name = settings.cloud.openstack.cloud or os.environ.get("OS_CLOUD", "")
        if not name:
            raise InvalidInput(
                "name the clouds.yaml entry of the cloud to manage (or set OS_CLOUD)",
                source="configuration",
                field="cloud.openstack.cloud",
            )
        try:
            return _CloudSide(openstack=openstack_connect(name))
        except Exception as error:  # the SDK's config errors: unknown entry, bad auth
            raise InvalidInput(
                f"cannot use the clouds.yaml entry {name!r}: {error}",
                source="configuration",
                field="cloud.openstack.cloud",
            ) from error
    return _CloudSide(hosts=_libvirt_hosts(settings))


def _libvirt_hosts(settings: Settings) -> dict[str, str]:
    if settings.cloud.driver != "libvirt":
        raise InvalidInput(
            f"the inventory and applier roles drive real hosts: needs `libvirt` or "
            f"`openstack`, got {settings.cloud.driver!r}",
            source="configuration",
            field="cloud.driver",
        )
    if not settings.cloud.libvirt.hosts:
        raise InvalidInput(
            "name the hosts to manage (host name: libvirt URI)",
            source="configuration",
            field="cloud.libvirt.hosts",
        )
    return dict(settings.cloud.libvirt.hosts)


def build_server(
    settings: Settings,
    roles: Sequence[str] = SERVER_ROLES,
    *,
    bus: Bus | None = None,
    inventory: CloudInventory | None = None,
    actions: CloudActions | None = None,
    clock: Clock | None = None,
) -> Server:
    """The roles of a real deployment over `database.url` and the configured bus
    (`bus.namespace`): inventory sync and applier through libvirt
    (`cloud.libvirt.hosts`) or OpenStack (`cloud.openstack`), ingest (and
    round-robin history), decision, API.
    `bus`, `inventory` and `actions` replace the configured ones (tests)."""
    unknown = sorted(set(roles) - set(SERVER_ROLES))
    if unknown:
        raise InvalidInput(f"unknown roles {unknown}; known: {list(SERVER_ROLES)}", source="--role")
    wanted = tuple(r for r in SERVER_ROLES if r in roles)
    needs_cloud = ("inventory" in wanted and inventory is None) or (
        "applier" in wanted and actions is None
    )
    cloud = _cloud_side(settings) if needs_cloud else _CloudSide()
    clock = clock or WallClock()
    database = open_database(settings.database.url)
    store = SqlStore(database, clock)
    server = Server(settings, wanted, store, loops=[], closers=[database.close])
    if cloud.openstack is not None:
        server.closers.append(cloud.openstack.close)
    try:
        if set(wanted) - {"api"} and bus is None:
            bus = open_bus(settings.bus, clock=clock)
            server.closers.append(bus.close)
        archives = (
            HostArchives(settings.history.directory, step=settings.history.step, clock=clock)
            if settings.history.enabled and {"api", "ingest"} & set(wanted)
            else None
        )
        limits = plan_limits(settings)
        registry = StrategyRegistry.discover()
        if bus is not None:
            _server_roles(
                server, settings, bus, wanted, cloud, archives, inventory, actions, registry, clock
            )
            server.closers.append(lambda: bus.drain(timeout=2.0))
        if "api" in wanted:
            routers = history_routers(archives, clock)
            app = create_app(store, status=server.status, extra_routers=routers, clock=clock)
            app.state.strategy_registry = registry
            app.state.plan_limits = limits
            server.api = ApiServing(app, settings.api.host, settings.api.port)
    except BaseException:
        for close in reversed(server.closers):
            close()
        raise
    return server


def _server_roles(
    server: Server,
    settings: Settings,
    bus: Bus,
    roles: tuple[str, ...],
    cloud: _CloudSide,
    archives: HostArchives | None,
    inventory: CloudInventory | None,
    actions: CloudActions | None,
    registry: StrategyRegistry,
    clock: Clock,
) -> None:
    """The roles that work through the bus, appended to `server` in start order."""
    timing = settings.server
    store = server.store
    if "inventory" in roles:
        if inventory is None and cloud.openstack is not None:
            nova = OpenstackInventory(cloud.openstack)
            server.counters["inventory_host_failures"] = lambda: dict(nova.failures)
            inventory = nova
        elif inventory is None:
            libvirt = LibvirtInventory(
                cloud.hosts, store, timeout=settings.cloud.libvirt.timeout_seconds
            )
            server.closers.append(libvirt.close)
            server.counters["inventory_host_failures"] = lambda: dict(libvirt.failures)
            inventory = libvirt
        sync = InventorySync(inventory, store, bus, clock)
        server.loops.append(RoleLoop("inventory", sync.sync, timing.inventory_interval_seconds))
    if "ingest" in roles:
        _ingest_role(server, bus, archives, timing.ingest_flush_seconds)
    if "decision" in roles:
        optimization = build_optimization(
            settings,
            bus,
            store,
            registry,
            clock,
            # Approved in the store: the applier role (here or in another process)
            # starts PENDING plans on its next round.
            launch=lambda plan_id: store.set_plan_state(
                plan_id, PlanState.PENDING, "automatic audit"
            ),
        )
        server.starters.append(optimization.start)
        server.closers.append(optimization.stop)
        server.loops.append(RoleLoop("decision", optimization.tick, timing.decision_tick_seconds))
        server.counters["decision_failures"] = lambda: optimization.failures
    if "applier" in roles:
        if actions is None and cloud.openstack is not None:
            block = settings.cloud.openstack.block_migration
            actions = LiveNovaActions(cloud.openstack, block_migration=block)
        elif actions is None:
            libvirt_actions = build_libvirt_actions(settings, cloud.hosts, store)
            server.closers.append(libvirt_actions.close)
            actions = libvirt_actions
        executor = build_executor(settings, store, actions, bus, clock)
        server.loops.append(
            RoleLoop(
                "applier",
                executor.advance_all,
                timing.applier_interval_seconds,
                prepare=executor.resume,  # plans a restart left running carry on first
            )
        )
        server.counters["applier_plan_failures"] = lambda: executor.plan_failures


def _ingest_role(server: Server, bus: Bus, archives: HostArchives | None, interval: float) -> None:
    """Samples to the cluster model (and to round-robin history), flushed every
    `interval` on the role's own thread."""
    ingest = SampleIngest(bus, server.store)
    history = HistoryRecorder(bus, archives) if archives is not None else None
    services: list[SampleIngest | HistoryRecorder] = [ingest]
    if history is not None:
        services.append(history)
    for service in services:
        server.starters.append(service.start)
        server.closers.append(service.stop)

    def flush() -> None:
        for service in services:
            service.flush()

    server.loops.append(RoleLoop("ingest", flush, interval))
    server.counters["samples_ingested"] = lambda: ingest.samples
    server.counters["ingest_flush_failures"] = lambda: ingest.flush_failures
    if history is not None:
        server.counters["history_failures"] = lambda: history.failures
