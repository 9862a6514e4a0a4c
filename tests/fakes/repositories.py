"""In-memory implementations of the repository ports (domain/ports.py)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from opendrs.domain.action import Action, ActionPlan, PlanState
from opendrs.domain.alarm import Alarm, AlarmState, AlarmTransition
from opendrs.domain.audit import Audit, AuditState
from opendrs.domain.errors import NotFound
from opendrs.domain.evacuation import EvacuationMark
from opendrs.domain.host import Host
from opendrs.domain.instance import Instance, ServerGroup


class MemoryRepositories:
    """One object that is a ClusterRepository, AlarmRepository, AuditRepository,
    PlanRepository and EvacuationRepository at once, keeping everything in dicts."""

    def __init__(self) -> None:
        self.hosts: dict[str, Host] = {}
        self.instances: dict[str, Instance] = {}
        self.groups: dict[str, ServerGroup] = {}
        self.alarms: dict[tuple[str, str], Alarm] = {}
        self.transitions: list[AlarmTransition] = []
        self.audits: dict[str, Audit] = {}
        self.plans: dict[str, ActionPlan] = {}
        self.journal: list[Action] = []
        self.evacuations: dict[str, EvacuationMark] = {}

    # cluster
    def upsert_hosts(self, hosts: Sequence[Host], fields: Collection[str] | None = None) -> None:
        for h in hosts:
            old = self.hosts.get(h.name)
            metrics = {**(old.metrics if old else {}), **h.metrics}
            if old is not None and fields is not None:
                h = replace(old, **{name: getattr(h, name) for name in fields})
            self.hosts[h.name] = replace(h, metrics=metrics)

    def upsert_instances(self, instances: Sequence[Instance]) -> None:
        for i in instances:
            old = self.instances.get(i.name)
            metrics = {**(old.metrics if old else {}), **i.metrics}
            self.instances[i.name] = replace(i, metrics=metrics)

    def remove_instances_not_in(self, names: Sequence[str]) -> int:
        gone = [n for n in self.instances if n not in set(names)]
        for n in gone:
            del self.instances[n]
        return len(gone)

    def upsert_groups(self, groups: Sequence[ServerGroup]) -> None:
        self.groups.update({g.name: g for g in groups})

    def update_metrics(self, entity: str, metrics: dict[str, float]) -> None:
        if entity in self.hosts:
            h = self.hosts[entity]
            self.hosts[entity] = replace(h, metrics={**h.metrics, **metrics})
        elif entity in self.instances:
            i = self.instances[entity]
            self.instances[entity] = replace(i, metrics={**i.metrics, **metrics})

    def update_many_metrics(self, latest: Mapping[str, Mapping[str, float]]) -> None:
        for entity, metrics in latest.items():
            self.update_metrics(entity, dict(metrics))

    def get_host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise NotFound("host", name) from None

    def list_hosts(self) -> list[Host]:
        return sorted(self.hosts.values(), key=lambda h: h.name)

    def list_instances(self, host: str | None = None) -> list[Instance]:
        found = [i for i in self.instances.values() if host is None or i.host == host]
        return sorted(found, key=lambda i: i.name)

    def list_groups(self) -> list[ServerGroup]:
        return sorted(self.groups.values(), key=lambda g: g.name)

    # alarms
    def record(self, transition: AlarmTransition) -> None:
        self.transitions.append(transition)
        self.alarms[(transition.rule, transition.entity)] = transition.as_alarm()

    def list_alarms(self, include_ok: bool = False) -> list[Alarm]:
        return [a for a in self.alarms.values() if include_ok or a.state != AlarmState.OK]

    def history(self, limit: int = 100) -> list[AlarmTransition]:
        return list(reversed(self.transitions))[:limit]

    # audits
    def save_audit(self, audit: Audit) -> None:
        self.audits[audit.id] = audit

    def get_audit(self, audit_id: str) -> Audit:
        try:
            return self.audits[audit_id]
        except KeyError:
            raise NotFound("audit", audit_id) from None

    def list_audits(self, limit: int = 100) -> list[Audit]:
        return sorted(self.audits.values(), key=lambda a: -a.created_at)[:limit]

    def list_scheduled_audits(self) -> list[Audit]:
        found = [a for a in self.audits.values() if a.next_run_at is not None]
        return sorted(found, key=lambda a: a.created_at)

    def claim_audit_run(self, audit_id: str, due: float, ran: Audit) -> bool:
        stored = self.audits.get(audit_id)
        if stored is None or stored.state != AuditState.ONGOING or stored.next_run_at != due:
            return False
        self.audits[audit_id] = replace(
            stored, last_run_at=ran.last_run_at, next_run_at=ran.next_run_at
        )
        return True

    def change_audit(
        self, audit_id: str, state: AuditState | None = None, message: str | None = None
    ) -> Audit:
        audit = self.get_audit(audit_id)
        if state is not None:
            audit = audit.moved_to(state)
        if message is not None:
            audit = replace(audit, message=message)
        self.audits[audit_id] = audit
        return audit

    # plans
    def save_plan(self, plan: ActionPlan) -> None:
        self.plans[plan.id] = replace(
            plan, actions=tuple(replace(a, plan_id=plan.id) for a in plan.actions)
        )

    def get_plan(self, plan_id: str) -> ActionPlan:
        try:
            return self.plans[plan_id]
        except KeyError:
            raise NotFound("action plan", plan_id) from None

    def list_plans(
        self, states: Sequence[PlanState] | None = None, limit: int = 100
    ) -> list[ActionPlan]:
        found = [p for p in self.plans.values() if states is None or p.state in states]
        return sorted(found, key=lambda p: -p.created_at)[:limit]

    def set_plan_state(self, plan_id: str, state: PlanState, message: str = "") -> None:
        plan = self.get_plan(plan_id)
        self.plans[plan_id] = replace(plan, state=state, message=message or plan.message)

    def journal_action(self, action: Action) -> None:
        self.journal.append(action)
        plan = self.get_plan(action.plan_id)
        self.plans[plan.id] = plan.with_action(action)

    # evacuation marks
    def record_evacuations(self, marks: Sequence[EvacuationMark]) -> None:
        self.evacuations.update({m.instance: m for m in marks})

    def list_evacuations(self, host: str | None = None) -> list[EvacuationMark]:
        found = [m for m in self.evacuations.values() if host is None or m.host == host]
        return sorted(found, key=lambda m: m.instance)

    def clear_evacuations(self, instances: Sequence[str], host: str | None = None) -> int:
        gone = [
            n
            for n in set(instances)
            if n in self.evacuations and (host is None or self.evacuations[n].host == host)
        ]
        for n in gone:
            del self.evacuations[n]
        return len(gone)
