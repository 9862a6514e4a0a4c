"""The evacuation ledger: records which instances a maintenance evacuation moved off
which host (from the applier's progress on the bus), ends a mark when its instance
is home again or deleted, and shows the marks to audits as instance metadata."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from opendrs.decision.registry import StrategyRegistry
from opendrs.decision.strategies.host_maintenance import GOAL, HostMaintenance
from opendrs.domain.action import FINAL_PLAN_STATES, ActionPlan, ActionState
from opendrs.domain.audit import Audit
from opendrs.domain.errors import NotFound
from opendrs.domain.evacuation import EVACUATED_FROM, arrivals, evacuations
from opendrs.domain.event import Event
from opendrs.domain.instance import Instance
from opendrs.domain.ports import AuditRepository, EvacuationRepository, PlanRepository

log = logging.getLogger(__name__)


class EvacuationLedger:
    def __init__(
        self,
        marks: EvacuationRepository,
        plans: PlanRepository,
        audits: AuditRepository,
        registry: StrategyRegistry,
    ) -> None:
        self._marks = marks
        self._plans = plans
        self._audits = audits
        self._registry = registry
        self.failures = 0

    def on_progress(self, event: Event) -> None:
        """A succeeded action is booked at once; when the plan ends, all its actions
        are booked again (the same marks: recording is idempotent), which catches up
        on a progress event this service missed."""
        data = event.data
        plan_id = str(data.get("plan") or event.subject)
        if "action" in data:
            if data.get("state") != ActionState.SUCCEEDED.value:
                return
        elif data.get("plan_state") not in {s.value for s in FINAL_PLAN_STATES}:
            return
        try:
            action = data.get("action")
            self.book(self._plans.get_plan(plan_id), str(action) if action else None)
        except Exception:
            self.failures += 1
            log.exception("could not book the evacuations of plan %s", plan_id)

    def book(self, plan: ActionPlan, action_id: str | None = None) -> None:
        """Record the marks the plan's succeeded evacuation migrations leave (of the
        one action, when named), and end those of instances its migrations brought
        back to the host they left."""
        chosen = [a for a in plan.actions if action_id is None or a.id == action_id]
        if not chosen:
            return
        node = self._evacuated_node(plan.audit_id)
        if node:
            self._marks.record_evacuations(evacuations(chosen, node, plan.audit_id, plan.id))
        for host, instances in sorted(arrivals(chosen).items()):
            # Only a mark naming this very host ends: an instance evacuated from
            # another host since still has to go back there.
            self._marks.clear_evacuations(instances, host=host)

    def on_deleted(self, event: Event) -> None:
        """An instance the cloud no longer has has nowhere to return from."""
        name = str(event.data.get("entity") or event.subject)
        try:
            self._marks.clear_evacuations([name])
        except Exception:
            self.failures += 1
            log.exception("could not clear the evacuation mark of deleted %s", name)

    def annotate(self, instances: Sequence[Instance]) -> list[Instance]:
        """The instances with their mark as metadata `evacuated_from` (the record
        overrides a value the cloud reports); marks of instances the model no longer
        has are dropped, as a deletion this service did not hear of."""
        marks = {m.instance: m.host for m in self._marks.list_evacuations()}
        if not marks:
            return list(instances)
        known = {i.name for i in instances}
        gone = sorted(set(marks) - known)
        if gone:
            self._marks.clear_evacuations(gone)
        return [
            dataclasses.replace(i, metadata={**i.metadata, EVACUATED_FROM: marks[i.name]})
            if i.name in marks
            else i
            for i in instances
        ]

    def _evacuated_node(self, audit_id: str) -> str:
        """The host the audit evacuates, or "" when it is not a maintenance evacuation."""
        try:
            audit = self._audits.get_audit(audit_id)
        except NotFound:
            return ""
        if not self._is_evacuation(audit):
            return ""
        return str(audit.parameters.get("maintenance_node") or "")

    def _is_evacuation(self, audit: Audit) -> bool:
        if audit.goal != GOAL:
            return False
        try:
            kind = self._registry.strategy_type(audit.goal, audit.strategy)
        except Exception:
            return False
        return kind.name == HostMaintenance.name
