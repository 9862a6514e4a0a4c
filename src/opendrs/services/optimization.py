"""Audit requests become audits, audits become action plans: load the cluster
model, run the goal's strategy, order the solution with the planner and, in
automatic mode, hand the plan to the applier."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from opendrs.bus import subjects
from opendrs.decision.audit import run_audit
from opendrs.decision.registry import StrategyRegistry
from opendrs.domain.action import ActionPlan, PlanState
from opendrs.domain.audit import Audit, AuditState, AuditType
from opendrs.domain.clock import Clock
from opendrs.domain.cluster import Cluster
from opendrs.domain.event import Event
from opendrs.domain.ports import (
    AuditRepository,
    Bus,
    ClusterRepository,
    PlanRepository,
    Subscription,
)
from opendrs.planner import PlanLimits, build_plan

log = logging.getLogger(__name__)

BUSY_PLAN_STATES = (PlanState.PENDING, PlanState.ONGOING, PlanState.CANCELLING)


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
        self._subscription: Subscription | None = None
        self.failures = 0

    def start(self) -> None:
        self._subscription = self._bus.subscribe(
            subjects.AUDIT_REQUESTS, self.on_request, "decision"
        )

    def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    def on_request(self, event: Event) -> None:
        data = event.data
        goal = str(data.get("goal", "overload_relief"))
        params = {**self._defaults.get(goal, {}), **dict(data.get("parameters", {}))}
        audit = Audit(
            goal=goal,
            strategy=str(data.get("strategy") or ""),
            audit_type=AuditType.EVENT,
            scope=tuple(str(h) for h in data.get("scope", ())),
            parameters=params,
            auto_trigger=bool(data.get("auto_trigger", True)),
            trigger=f"{data.get('rule', event.type)} on {event.subject or ','.join(data.get('scope', ()))}",
            created_at=self._clock.now(),
        )
        self.run(audit)

    def run(self, audit: Audit) -> ActionPlan | None:
        """Run one audit to a saved plan (started when the audit is automatic)."""
        self._audits.save_audit(audit)
        audit = audit.moved_to(AuditState.ONGOING)
        self._audits.save_audit(audit)
        busy = self._busy_hosts()
        if busy & set(audit.scope):
            audit = audit.moved_to(
                AuditState.CANCELLED,
                f"a running plan already touches {sorted(busy & set(audit.scope))}",
            )
            self._audits.save_audit(audit)
            return None
        try:
            cluster = self._snapshot(exclude=busy)
            solution = run_audit(audit, cluster, self._registry)
            if solution.empty:
                why = "; ".join(solution.explanations) or "nothing to do"
                self._audits.save_audit(
                    audit.moved_to(AuditState.SUCCEEDED, f"no action proposed: {why}")
                )
                return None
            plan = build_plan(solution, cluster, self._limits, audit.id, self._clock.now())
        except Exception as exc:
            self.failures += 1
            log.exception("audit %s (%s) failed", audit.id, audit.goal)
            self._audits.save_audit(audit.moved_to(AuditState.FAILED, str(exc)))
            return None
        self._plans.save_plan(plan)
        self._audits.save_audit(
            audit.moved_to(AuditState.SUCCEEDED, f"plan {plan.id} with {len(plan.actions)} actions")
        )
        if audit.auto_trigger:
            self._launch(plan.id)
        return plan

    def _snapshot(self, exclude: set[str]) -> Cluster:
        hosts = self._cluster.list_hosts()
        # Hosts a running plan is working on are out of bounds for a new plan.
        hosts = [h for h in hosts if h.name not in exclude]
        names = {h.name for h in hosts}
        instances = [i for i in self._cluster.list_instances() if i.host in names]
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
