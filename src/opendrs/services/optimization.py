"""Audit requests become audits, audits become action plans: load the cluster
model, run the goal's strategy, order the solution with the planner and, in
automatic mode, hand the plan to the applier. Audits come from events (alarms,
host state changes) and from continuous schedules, both those of the settings file
and those stored in SQL by the API; instances moved within the anti-ping-pong
window are passed to strategies that accept the hint, and instances evacuated for
maintenance carry the host they left (see services/evacuations.py)."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opendrs.bus import subjects
from opendrs.config import ContinuousAuditSettings
from opendrs.decision.audit import run_audit
from opendrs.decision.registry import StrategyRegistry
from opendrs.domain.action import ActionPlan, ActionState, ActionType, PlanState
from opendrs.domain.audit import Audit, AuditState, AuditType
from opendrs.domain.clock import Clock
from opendrs.domain.cluster import Cluster
from opendrs.domain.event import Event
from opendrs.domain.ports import (
    AuditRepository,
    Bus,
    ClusterRepository,
    EvacuationRepository,
    PlanRepository,
    Subscription,
)
from opendrs.planner import PlanLimits, build_plan
from opendrs.services.evacuations import EvacuationLedger
from opendrs.services.server_loop import serialized

log = logging.getLogger(__name__)

BUSY_PLAN_STATES = (PlanState.PENDING, PlanState.ONGOING, PlanState.CANCELLING)
# Parameters the built-in strategies accept for anti-ping-pong.
PING_PONG_PARAMETERS = ("recently_moved", "recent_host_moves")


@dataclass(frozen=True, slots=True)
class ContinuousAudit:
    """An audit run every `interval` seconds (Watcher's CONTINUOUS type)."""

    name: str
    goal: str
    interval: float
    strategy: str = ""
    scope: tuple[str, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    auto_trigger: bool = False

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError(f"continuous audit {self.name}: interval must be positive")


def continuous_audits(settings: Iterable[ContinuousAuditSettings]) -> list[ContinuousAudit]:
    """The schedules of the `decision.continuous_audits` configuration section."""
    return [
        ContinuousAudit(
            name=c.name,
            goal=c.goal,
            interval=c.interval_seconds,
            strategy=c.strategy,
            scope=tuple(c.scope),
            parameters=dict(c.parameters),
            auto_trigger=c.auto_trigger,
        )
        for c in settings
    ]


def recent_moves(
    plans: Iterable[ActionPlan], since: float
) -> tuple[tuple[str, ...], dict[str, int]]:
    """Instances migrated (or migrating) since `since`, and how many of those
    migrations each host took part in."""
    instances: set[str] = set()
    hosts: dict[str, int] = {}
    for plan in plans:
        for action in plan.actions:
            if action.type != ActionType.MIGRATE or action.instance is None:
                continue
            if action.state == ActionState.ONGOING:
                when = since
            elif action.state == ActionState.SUCCEEDED and action.finished_at is not None:
                when = action.finished_at
            else:
                continue
            if when < since:
                continue
            instances.add(action.instance)
            for host in (action.source, action.destination):
                if host:
                    hosts[host] = hosts.get(host, 0) + 1
    return tuple(sorted(instances)), hosts


class Optimization:
    def __init__(
        self,
        *,
        bus: Bus,
        cluster: ClusterRepository,
        audits: AuditRepository,
        plans: PlanRepository,
        registry: StrategyRegistry,
        limits: PlanLimits,
        clock: Clock,
        launch: Callable[[str], object],
        defaults: Mapping[str, Mapping[str, Any]] | None = None,
        ping_pong_window: float = 3600.0,
        continuous: Sequence[ContinuousAudit] = (),
        evacuations: EvacuationRepository | None = None,
    ) -> None:
        self._bus = bus
        self._cluster = cluster
        self._audits = audits
        self._plans = plans
        self._registry = registry
        self._limits = limits
        self._clock = clock
        self._launch = launch
        self._defaults = defaults or {}
        self._subscriptions: list[Subscription] = []
        self._ping_pong_window = ping_pong_window
        self._continuous = list(continuous)
        self._next_run: dict[str, float] = {}
        # Without a store for them, evacuations are not recorded and host_return
        # only brings back the instances it is given.
        self.evacuations = (
            EvacuationLedger(evacuations, plans, audits, registry)
            if evacuations is not None
            else None
        )
        self.failures = 0
        # A networked bus calls the handlers on its own thread while `tick` runs on
        # the server's: one at a time, so two audits never plan over each other.
        # Reentrant, as the in-memory bus delivers what a run publishes at once.
        self._serial = threading.RLock()

    def start(self) -> None:
        handlers: list[tuple[str, Callable[[Event], object]]] = [
            (subjects.AUDIT_REQUESTS, self.on_request),
            (subjects.HOST_STATE, self.on_host_state),
        ]
        if self.evacuations is not None:
            handlers += [
                (subjects.PLAN_PROGRESS, self.evacuations.on_progress),
                (subjects.INVENTORY_DELETED, self.evacuations.on_deleted),
            ]
        self._subscriptions = [
            self._bus.subscribe(subject, serialized(self._serial, handler), "decision")
            for subject, handler in handlers
        ]

    def stop(self) -> None:
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions = []

    def tick(self) -> list[ActionPlan]:
        """Run every continuous audit that is due, configured or stored; a failing one
        is counted and the others still run. Each run supersedes the audit's earlier
        RECOMMENDED plans."""
        with self._serial:
            now = self._clock.now()
            return [*self._run_configured(now), *self._run_stored(now)]

    def _run_configured(self, now: float) -> list[ActionPlan]:
        """The settings file's schedules: each run is a new audit, named by its trigger;
        they all run at the first tick, as they are not persisted."""
        made: list[ActionPlan] = []
        for schedule in self._continuous:
            due = self._next_run.get(schedule.name, now)
            if now < due:
                continue
            self._next_run[schedule.name] = now + schedule.interval
            try:
                trigger = f"continuous {schedule.name}"
                self._supersede(
                    {a.id for a in self._audits.list_audits(limit=1000) if a.trigger == trigger}
                )
                audit = Audit(
                    goal=schedule.goal,
                    strategy=schedule.strategy,
                    audit_type=AuditType.CONTINUOUS,
                    scope=schedule.scope,
                    parameters={**self._defaults.get(schedule.goal, {}), **schedule.parameters},
                    auto_trigger=schedule.auto_trigger,
                    trigger=trigger,
                    created_at=now,
                )
                plan = self.run(audit)
            except Exception:
                self.failures += 1
                log.exception("continuous audit %s failed", schedule.name)
                continue
            if plan is not None:
                made.append(plan)
        return made

    def _run_stored(self, now: float) -> list[ActionPlan]:
        """The schedules made through the API: the audit stays ONGOING and every run's
        plan links to it. A run is claimed in the store before it starts, so a
        restart does not repeat it; a run that fails ends the audit FAILED (Watcher's
        rule), a run blocked by a running plan is skipped."""
        try:
            schedules = self._audits.list_scheduled_audits()
        except Exception:
            self.failures += 1
            log.exception("could not read the continuous audits")
            return []
        made: list[ActionPlan] = []
        for audit in schedules:
            due = audit.next_run_at
            if audit.state != AuditState.ONGOING or due is None or now < due:
                continue
            try:
                plan = self._run_due(audit, due, now)
            except Exception:
                self.failures += 1
                log.exception("continuous audit %s (%s) failed", audit.id, audit.goal)
                continue
            if plan is not None:
                made.append(plan)
        return made

    def _run_due(self, audit: Audit, due: float, now: float) -> ActionPlan | None:
        ran = audit.ran(now)
        if not self._audits.claim_audit_run(audit.id, due, ran):
            return None  # suspended, cancelled or run by someone else since the read
        try:
            plan, outcome = self._run_once(ran, now)
        except Exception as exc:
            self._end_failed(audit.id, f"run at {now:.0f} failed: {exc}")
            raise
        self._note(audit.id, outcome)
        if plan is not None and audit.auto_trigger:
            self._launch(plan.id)
        return plan

    def _run_once(self, audit: Audit, now: float) -> tuple[ActionPlan | None, str]:
        """One run of a stored schedule: the stored audit is not changed, so the goal's
        defaults and the anti-ping-pong hints are worked out afresh each time."""
        self._supersede({audit.id})
        parameters = {**self._defaults.get(audit.goal, {}), **audit.parameters}
        attempt = self._with_ping_pong(dataclasses.replace(audit, parameters=parameters))
        try:
            plan, why = self._propose(attempt)
        except _Blocked as blocked:
            return None, f"run at {now:.0f} skipped: {blocked}"
        if plan is None:
            return None, f"run at {now:.0f}: {why}"
        self._plans.save_plan(plan)
        return plan, f"run at {now:.0f}: plan {plan.id} with {len(plan.actions)} actions"

    def _end_failed(self, audit_id: str, message: str) -> None:
        try:
            self._audits.change_audit(audit_id, AuditState.FAILED, message)
        except Exception:
            # Suspended or cancelled meanwhile (the operator's word stands), or the store is down.
            log.exception("could not mark continuous audit %s FAILED", audit_id)

    def _note(self, audit_id: str, message: str) -> None:
        try:
            # An operator's suspend or cancel during the run keeps its own message.
            if self._audits.get_audit(audit_id).state == AuditState.ONGOING:
                self._audits.change_audit(audit_id, message=message)
        except Exception:
            log.exception("could not record the run of continuous audit %s", audit_id)

    def on_host_state(self, event: Event) -> None:
        """A host entering maintenance is evacuated; one leaving it (enabled again)
        gets its instances back when the event asks for it (`bring_back`): those
        named in `instances`, else those recorded as evacuated from it. The event
        says the host is enabled, so the plan may enable it where the model lags."""
        data = event.data
        host = str(data.get("host") or event.subject)
        state = str(data.get("state", ""))
        if state == "maintenance":
            goal, strategy = "host_maintenance", "host_maintenance"
            params: dict[str, Any] = {"maintenance_node": host}
            if data.get("backup_node"):
                params["backup_node"] = str(data["backup_node"])
        elif state == "enabled" and data.get("bring_back"):
            goal, strategy = "host_maintenance", "host_return"
            params = {"maintenance_node": host, "enable_node": True}
            if data.get("instances"):
                params["instances"] = [str(n) for n in data["instances"]]
        else:
            return
        self.run(
            Audit(
                goal=goal,
                strategy=strategy,
                audit_type=AuditType.EVENT,
                parameters={**self._defaults.get(goal, {}), **params},
                auto_trigger=bool(data.get("auto_trigger", True)),
                trigger=f"host {host} is {state}",
                created_at=self._clock.now(),
            )
        )

    def _supersede(self, audits: set[str]) -> None:
        """Earlier RECOMMENDED plans of these audits give way to the coming run's."""
        for plan in self._plans.list_plans(states=[PlanState.RECOMMENDED]):
            if plan.audit_id in audits:
                self._plans.set_plan_state(plan.id, PlanState.SUPERSEDED, "a newer run replaced it")

    def _with_ping_pong(self, audit: Audit) -> Audit:
        """Add the anti-ping-pong hints when the strategy takes them and the audit
        does not name them itself."""
        try:
            kind = self._registry.strategy_type(audit.goal, audit.strategy)
        except Exception:
            return audit
        accepted = getattr(kind, "parameters_type", None)
        if accepted is None or not dataclasses.is_dataclass(accepted):
            return audit
        names = {f.name for f in dataclasses.fields(accepted)}
        if not set(PING_PONG_PARAMETERS) <= names:
            return audit
        if any(p in audit.parameters for p in PING_PONG_PARAMETERS):
            return audit
        since = self._clock.now() - self._ping_pong_window
        moved, hosts = recent_moves(self._plans.list_plans(limit=1000), since)
        if not moved:
            return audit
        return dataclasses.replace(
            audit,
            parameters={
                **audit.parameters,
                "recently_moved": list(moved),
                "recent_host_moves": hosts,
            },
        )

    def on_request(self, event: Event) -> None:
        data = event.data
        goal = str(data.get("goal", "overload_relief"))
        params = {**self._defaults.get(goal, {}), **dict(data.get("parameters", {}))}
        where = event.subject or ",".join(data.get("scope", ()))
        audit = Audit(
            goal=goal,
            strategy=str(data.get("strategy") or ""),
            audit_type=AuditType.EVENT,
            scope=tuple(str(h) for h in data.get("scope", ())),
            parameters=params,
            auto_trigger=bool(data.get("auto_trigger", True)),
            trigger=f"{data.get('rule', event.type)} on {where}",
            created_at=self._clock.now(),
        )
        self.run(audit)

    def run(self, audit: Audit) -> ActionPlan | None:
        """Run one audit to a saved plan (started when the audit is automatic)."""
        audit = self._with_ping_pong(audit)
        self._audits.save_audit(audit)
        audit = audit.moved_to(AuditState.ONGOING)
        self._audits.save_audit(audit)
        try:
            plan, why = self._propose(audit)
        except _Blocked as blocked:
            self._audits.save_audit(audit.moved_to(AuditState.CANCELLED, str(blocked)))
            return None
        except Exception as exc:
            self.failures += 1
            log.exception("audit %s (%s) failed", audit.id, audit.goal)
            self._audits.save_audit(audit.moved_to(AuditState.FAILED, str(exc)))
            return None
        if plan is None:
            self._audits.save_audit(audit.moved_to(AuditState.SUCCEEDED, why))
            return None
        self._plans.save_plan(plan)
        self._audits.save_audit(
            audit.moved_to(AuditState.SUCCEEDED, f"plan {plan.id} with {len(plan.actions)} actions")
        )
        if audit.auto_trigger:
            self._launch(plan.id)
        return plan

    def _propose(self, audit: Audit) -> tuple[ActionPlan | None, str]:
        """The plan the audit's strategy and the planner make of the hosts no running
        plan works on (not saved), or None and why there is none. Raises _Blocked when
        a running plan touches the audit's scope."""
        busy = self._busy_hosts()
        if busy & set(audit.scope):
            raise _Blocked(f"a running plan already touches {sorted(busy & set(audit.scope))}")
        cluster = self._snapshot(exclude=busy)
        solution = run_audit(audit, cluster, self._registry)
        if solution.empty:
            return (
                None,
                f"no action proposed: {'; '.join(solution.explanations) or 'nothing to do'}",
            )
        return build_plan(solution, cluster, self._limits, audit.id, self._clock.now()), ""

    def _snapshot(self, exclude: set[str]) -> Cluster:
        hosts = self._cluster.list_hosts()
        # Hosts a running plan is working on are out of bounds for a new plan.
        hosts = [h for h in hosts if h.name not in exclude]
        names = {h.name for h in hosts}
        instances = self._cluster.list_instances()
        if self.evacuations is not None:
            instances = self.evacuations.annotate(instances)
        instances = [i for i in instances if i.host in names]
        return Cluster.of(hosts, instances, self._cluster.list_groups())

    def _busy_hosts(self) -> set[str]:
        busy: set[str] = set()
        for plan in self._plans.list_plans(states=BUSY_PLAN_STATES):
            for action in plan.actions:
                busy.update(h for h in (action.source, action.destination) if h)
                node = action.parameters.get("node")
                if node:
                    busy.add(str(node))
        return busy


class _Blocked(Exception):
    """A running plan already works on the audit's scope: this run does not happen."""
