"""Conversions between domain values and table rows, exact both ways: enums are
stored by value, tuples as JSON lists, and whatever is read back compares equal to
what was written."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, fields
from typing import Any

from opendrs.domain.action import (
    Action,
    ActionPlan,
    ActionState,
    ActionType,
    PlanLimits,
    PlanState,
)
from opendrs.domain.alarm import Alarm, AlarmState, AlarmTransition, Severity
from opendrs.domain.audit import Audit, AuditState, AuditType
from opendrs.domain.errors import InvalidInput
from opendrs.domain.evacuation import EvacuationMark
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Flavor, GroupPolicy, Instance, InstanceState, ServerGroup

Row = Mapping[Any, Any]  # a RowMapping (keyed by column name) or a plain dict

# Host fields stored as they are; the others need converting.
_HOST_PLAIN = frozenset(f.name for f in fields(Host)) - {"state", "aggregates", "metrics"}


def metric_values(metrics: Mapping[str, Any], entity: str) -> dict[str, float]:
    """Metrics as finite floats, or InvalidInput naming the bad one."""
    values: dict[str, float] = {}
    for name, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidInput(
                f"metric {name!r} is {value!r}, not a number", source=entity, field="metrics"
            ) from None
        if not math.isfinite(number):
            raise InvalidInput(
                f"metric {name!r} is {value!r}, not a finite number",
                source=entity,
                field="metrics",
            )
        values[str(name)] = number
    return values


# Columns a host row works out or merges itself, whatever fields a refresh names.
HOST_DERIVED = ("metrics", "free_ram_mb", "free_disk_gb", "updated_at")


def host_row(host: Host, metrics: Mapping[str, float], now: float) -> dict[str, Any]:
    row = {name: getattr(host, name) for name in _HOST_PLAIN}
    row.update(
        state=host.state.value,
        aggregates=list(host.aggregates),
        metrics=dict(metrics),
        free_ram_mb=host.free_ram_mb,
        free_disk_gb=host.free_disk_gb,
        updated_at=now,
    )
    return row


def host_from(row: Row) -> Host:
    return Host(
        **{name: row[name] for name in _HOST_PLAIN},
        state=HostState(row["state"]),
        aggregates=tuple(row["aggregates"]),
        metrics=dict(row["metrics"]),
    )


def instance_row(instance: Instance, metrics: Mapping[str, float], now: float) -> dict[str, Any]:
    return {
        "name": instance.name,
        "host": instance.host,
        "flavor_name": instance.flavor.name,
        "vcpus": instance.flavor.vcpus,
        "memory_mb": instance.flavor.memory_mb,
        "disk_gb": instance.flavor.disk_gb,
        "state": instance.state.value,
        "groups": list(instance.groups),
        "project": instance.project,
        "metadata": dict(instance.metadata),
        "metrics": dict(metrics),
        "updated_at": now,
    }


def instance_from(row: Row) -> Instance:
    return Instance(
        name=row["name"],
        host=row["host"],
        flavor=Flavor(
            name=row["flavor_name"],
            vcpus=row["vcpus"],
            memory_mb=row["memory_mb"],
            disk_gb=row["disk_gb"],
        ),
        state=InstanceState(row["state"]),
        groups=tuple(row["groups"]),
        project=row["project"],
        metadata=dict(row["metadata"]),
        metrics=dict(row["metrics"]),
    )


def group_row(group: ServerGroup) -> dict[str, Any]:
    return {"name": group.name, "policy": group.policy.value}


def group_from(row: Row) -> ServerGroup:
    return ServerGroup(name=row["name"], policy=GroupPolicy(row["policy"]))


def alarm_row(transition: AlarmTransition) -> dict[str, Any]:
    alarm = transition.as_alarm()
    return {
        "rule": alarm.rule,
        "entity": alarm.entity,
        "state": alarm.state.value,
        "since": alarm.since,
        "value": alarm.value,
        "severity": alarm.severity.value,
        "source": alarm.source,
        "labels": dict(alarm.labels),
    }


def alarm_from(row: Row) -> Alarm:
    return Alarm(
        rule=row["rule"],
        entity=row["entity"],
        state=AlarmState(row["state"]),
        since=row["since"],
        value=row["value"],
        severity=Severity(row["severity"]),
        source=row["source"],
        labels=dict(row["labels"]),
    )


def transition_row(transition: AlarmTransition) -> dict[str, Any]:
    return {
        "rule": transition.rule,
        "entity": transition.entity,
        "previous": transition.previous.value,
        "current": transition.current.value,
        "time": transition.time,
        "value": transition.value,
        "reason": transition.reason,
        "labels": dict(transition.labels),
        "severity": transition.severity.value,
        "source": transition.source,
        "rule_version": transition.rule_version,
        "details": dict(transition.details),
        "held": transition.held,
        "annotations": dict(transition.annotations),
    }


def transition_from(row: Row) -> AlarmTransition:
    return AlarmTransition(
        rule=row["rule"],
        entity=row["entity"],
        previous=AlarmState(row["previous"]),
        current=AlarmState(row["current"]),
        time=row["time"],
        value=row["value"],
        severity=Severity(row["severity"]),
        source=row["source"],
        reason=row["reason"],
        labels=dict(row["labels"]),
        rule_version=row["rule_version"],
        details=dict(row["details"] or {}),
        held=bool(row["held"]),
        annotations=dict(row["annotations"] or {}),
    )


def audit_row(audit: Audit) -> dict[str, Any]:
    return {
        "id": audit.id,
        "goal": audit.goal,
        "strategy": audit.strategy,
        "audit_type": audit.audit_type.value,
        "scope": list(audit.scope),
        "parameters": dict(audit.parameters),
        "auto_trigger": audit.auto_trigger,
        "state": audit.state.value,
        "trigger": audit.trigger,
        "message": audit.message,
        "created_at": audit.created_at,
        "interval_seconds": audit.interval,
        "next_run_at": audit.next_run_at,
        "last_run_at": audit.last_run_at,
    }


def audit_from(row: Row) -> Audit:
    return Audit(
        id=row["id"],
        goal=row["goal"],
        strategy=row["strategy"],
        audit_type=AuditType(row["audit_type"]),
        scope=tuple(row["scope"]),
        parameters=dict(row["parameters"]),
        auto_trigger=bool(row["auto_trigger"]),
        state=AuditState(row["state"]),
        trigger=row["trigger"],
        message=row["message"],
        created_at=row["created_at"],
        interval=row["interval_seconds"],
        next_run_at=row["next_run_at"],
        last_run_at=row["last_run_at"],
    )


def plan_row(plan: ActionPlan) -> dict[str, Any]:
    return {
        "id": plan.id,
        "audit_id": plan.audit_id,
        "state": plan.state.value,
        "efficacy": dict(plan.efficacy),
        "message": plan.message,
        "created_at": plan.created_at,
        "limits": asdict(plan.limits),
    }


def plan_from(row: Row, actions: Iterable[Action]) -> ActionPlan:
    return ActionPlan(
        id=row["id"],
        audit_id=row["audit_id"],
        actions=tuple(actions),
        state=PlanState(row["state"]),
        efficacy=dict(row["efficacy"]),
        message=row["message"],
        created_at=row["created_at"],
        limits=PlanLimits(**row["limits"]),
    )


def action_values(action: Action) -> dict[str, Any]:
    """The columns of an action that a journal write may change."""
    return {
        "type": action.type.value,
        "parameters": dict(action.parameters),
        "parents": list(action.parents),
        "state": action.state.value,
        "message": action.message,
        "explanation": action.explanation,
        "started_at": action.started_at,
        "finished_at": action.finished_at,
    }


def action_row(action: Action, plan_id: str, ordinal: int) -> dict[str, Any]:
    return {"plan_id": plan_id, "id": action.id, "ordinal": ordinal, **action_values(action)}


def action_from(row: Row) -> Action:
    return Action(
        id=row["id"],
        plan_id=row["plan_id"],
        type=ActionType(row["type"]),
        parameters=dict(row["parameters"]),
        parents=tuple(row["parents"]),
        state=ActionState(row["state"]),
        message=row["message"],
        explanation=row["explanation"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def evacuation_row(mark: EvacuationMark) -> dict[str, Any]:
    return asdict(mark)


def evacuation_from(row: Row) -> EvacuationMark:
    return EvacuationMark(
        instance=row["instance"],
        host=row["host"],
        audit_id=row["audit_id"],
        plan_id=row["plan_id"],
        at=float(row["at"]),
    )
