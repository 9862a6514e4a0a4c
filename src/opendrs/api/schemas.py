"""The JSON shapes of the v1 API, each built from a domain value by its `of` method,
so the domain stays free of pydantic and the wire format is documented in OpenAPI."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

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
from opendrs.domain.evacuation import EvacuationMark
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Instance, InstanceState

# Measured host metrics as Ceilometer names them.
HOST_CPU_METRIC = "compute.node.cpu.percent"
HOST_MEMORY_USED_METRIC = "memory.used"
INSTANCE_CPU_METRIC = "cpu_util"


class HostOut(BaseModel):
    """A hypervisor with Nova's compute_nodes fields, its state and the derived load."""

    name: str
    state: HostState
    disabled_reason: str | None
    vcpus: int
    vcpus_used: int
    memory_mb: int
    memory_mb_used: int
    free_ram_mb: int
    local_gb: int
    local_gb_used: int
    free_disk_gb: int
    disk_available_least: int | None
    running_vms: int
    current_workload: int
    hypervisor_type: str
    hypervisor_version: int
    cpu_info: str
    cpu_allocation_ratio: float
    ram_allocation_ratio: float
    disk_allocation_ratio: float
    reserved_host_cpus: int
    reserved_host_memory_mb: int
    reserved_host_disk_mb: int
    aggregates: list[str]
    availability_zone: str
    metrics: dict[str, float]
    cpu_percent: float | None = Field(
        description="measured CPU use in % of the host's cores: the host's "
        "compute.node.cpu.percent, else the sum of its instances' cpu_util; "
        "null when nothing was measured"
    )
    ram_percent: float | None = Field(
        description="RAM in use in % of memory_mb: the measured memory.used, "
        "else memory_mb_used; null for a host without memory"
    )

    @classmethod
    def of(cls, host: Host, instances: Iterable[Instance] = ()) -> HostOut:
        return cls(
            name=host.name,
            state=host.state,
            disabled_reason=host.disabled_reason,
            vcpus=host.vcpus,
            vcpus_used=host.vcpus_used,
            memory_mb=host.memory_mb,
            memory_mb_used=host.memory_mb_used,
            free_ram_mb=host.free_ram_mb,
            local_gb=host.local_gb,
            local_gb_used=host.local_gb_used,
            free_disk_gb=host.free_disk_gb,
            disk_available_least=host.disk_available_least,
            running_vms=host.running_vms,
            current_workload=host.current_workload,
            hypervisor_type=host.hypervisor_type,
            hypervisor_version=host.hypervisor_version,
            cpu_info=host.cpu_info,
            cpu_allocation_ratio=host.cpu_allocation_ratio,
            ram_allocation_ratio=host.ram_allocation_ratio,
            disk_allocation_ratio=host.disk_allocation_ratio,
            reserved_host_cpus=host.reserved_host_cpus,
            reserved_host_memory_mb=host.reserved_host_memory_mb,
            reserved_host_disk_mb=host.reserved_host_disk_mb,
            aggregates=list(host.aggregates),
            availability_zone=host.availability_zone,
            metrics=dict(host.metrics),
            cpu_percent=cpu_percent(host, instances),
            ram_percent=ram_percent(host),
        )


def cpu_percent(host: Host, instances: Iterable[Instance]) -> float | None:
    """The host's own measurement wins; instances fill in when the host has none."""
    if host.cpu_percent is not None:
        return host.cpu_percent
    measured = [i for i in instances if INSTANCE_CPU_METRIC in i.metrics]
    if not measured or host.vcpus <= 0:
        return None
    return 100.0 * sum(i.cpu_cores_used for i in measured) / host.vcpus


def ram_percent(host: Host) -> float | None:
    if host.memory_mb <= 0:
        return None
    used = host.metrics.get(HOST_MEMORY_USED_METRIC, float(host.memory_mb_used))
    return 100.0 * used / host.memory_mb


class FlavorOut(BaseModel):
    name: str
    vcpus: int
    memory_mb: int
    disk_gb: int


class InstanceOut(BaseModel):
    name: str
    host: str
    state: InstanceState
    flavor: FlavorOut
    vcpus: int
    memory_mb: int
    disk_gb: int
    groups: list[str]
    project: str
    metadata: dict[str, str]
    metrics: dict[str, float]
    cpu_util: float | None = Field(description="latest measured CPU use in % of its vCPUs")

    @classmethod
    def of(cls, instance: Instance) -> InstanceOut:
        f = instance.flavor
        return cls(
            name=instance.name,
            host=instance.host,
            state=instance.state,
            flavor=FlavorOut(name=f.name, vcpus=f.vcpus, memory_mb=f.memory_mb, disk_gb=f.disk_gb),
            vcpus=instance.vcpus,
            memory_mb=instance.memory_mb,
            disk_gb=instance.disk_gb,
            groups=list(instance.groups),
            project=instance.project,
            metadata=dict(instance.metadata),
            metrics=dict(instance.metrics),
            cpu_util=instance.metrics.get(INSTANCE_CPU_METRIC),
        )


class AlarmOut(BaseModel):
    """The current state of one rule for one entity."""

    key: str
    rule: str
    entity: str
    state: AlarmState
    since: float
    value: float | None
    severity: Severity
    source: str
    labels: dict[str, str]

    @classmethod
    def of(cls, alarm: Alarm) -> AlarmOut:
        return cls(
            key=alarm.key,
            rule=alarm.rule,
            entity=alarm.entity,
            state=alarm.state,
            since=alarm.since,
            value=alarm.value,
            severity=alarm.severity,
            source=alarm.source,
            labels=dict(alarm.labels),
        )


class AlarmTransitionOut(BaseModel):
    """One change of an alarm's state, newest first in the history."""

    rule: str
    entity: str
    previous: AlarmState
    current: AlarmState
    time: float
    value: float | None
    severity: Severity
    source: str
    reason: str
    labels: dict[str, str]
    notified: bool

    @classmethod
    def of(cls, t: AlarmTransition) -> AlarmTransitionOut:
        return cls(
            rule=t.rule,
            entity=t.entity,
            previous=t.previous,
            current=t.current,
            time=t.time,
            value=t.value,
            severity=t.severity,
            source=t.source,
            reason=t.reason,
            labels=dict(t.labels),
            notified=t.notified,
        )


class AuditOut(BaseModel):
    id: str
    goal: str
    strategy: str
    audit_type: AuditType
    scope: list[str]
    parameters: dict[str, Any]
    auto_trigger: bool
    state: AuditState
    trigger: str
    message: str
    created_at: float
    interval: float | None = Field(
        description="a continuous audit's seconds between runs (null for the others)"
    )
    next_run_at: float | None = Field(
        description="when the next run is due (null once the audit has ended)"
    )
    last_run_at: float | None = Field(description="when the last run started (null before)")

    @classmethod
    def of(cls, audit: Audit) -> AuditOut:
        return cls(
            id=audit.id,
            goal=audit.goal,
            strategy=audit.strategy,
            audit_type=audit.audit_type,
            scope=list(audit.scope),
            parameters=dict(audit.parameters),
            auto_trigger=audit.auto_trigger,
            state=audit.state,
            trigger=audit.trigger,
            message=audit.message,
            created_at=audit.created_at,
            interval=audit.interval,
            next_run_at=audit.next_run_at,
            last_run_at=audit.last_run_at,
        )


class AuditIn(BaseModel):
    """An audit to run now. With `what_if` nothing is stored and the answer is the
    plan the engine would propose; otherwise the audit and its plan are saved
    (the plan RECOMMENDED, waiting for approval, unless `auto_trigger`). A
    `continuous` audit is not run here: it is stored ONGOING with its `interval`
    and the optimization service runs it, first at its next tick."""

    model_config = {"extra": "forbid"}

    goal: str = Field(min_length=1)
    strategy: str = ""
    audit_type: AuditType = AuditType.ONESHOT
    scope: list[str] = Field(default_factory=list, description="host names")
    scope_aggregates: list[str] = Field(default_factory=list)
    scope_zones: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    auto_trigger: bool = False
    what_if: bool = False
    interval: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        validate_default=True,
        description="seconds between the runs of a continuous audit (required for one)",
    )

    @field_validator("interval")
    @classmethod
    def _interval_for_continuous(cls, interval: float | None, info: ValidationInfo) -> float | None:
        if "audit_type" not in info.data:
            return interval  # the audit type is wrong itself and reported as such
        continuous = info.data["audit_type"] == AuditType.CONTINUOUS
        if continuous and interval is None:
            raise ValueError("a continuous audit needs an interval in seconds, greater than 0")
        if not continuous and interval is not None:
            raise ValueError("only a continuous audit has an interval")
        return interval


class AuditChangeIn(BaseModel):
    """A continuous audit's new state: SUSPENDED pauses its schedule, ONGOING
    resumes it, CANCELLED stops it for good."""

    model_config = {"extra": "forbid"}

    state: Literal["SUSPENDED", "ONGOING", "CANCELLED"]


class WhatIfActionOut(BaseModel):
    id: str
    type: ActionType
    instance: str | None
    source: str | None
    destination: str | None
    node: str | None
    state: str | None
    after: list[str] = Field(description="ids of the actions that must succeed first")


class WhatIfOut(BaseModel):
    actions: list[WhatIfActionOut]
    efficacy: dict[str, float]
    explanations: list[str]


class AuditRunOut(BaseModel):
    audit: AuditOut
    plan_id: str | None = Field(description="the plan proposed, if any")
    explanations: list[str]


class EvacuationMarkOut(BaseModel):
    """An instance a maintenance evacuation moved off `host`: the way back
    (`host_return`) brings it home, and the mark ends when it arrives."""

    instance: str
    host: str = Field(description="the host the instance was evacuated from")
    audit_id: str = Field(description="the host_maintenance audit that evacuated it")
    plan_id: str
    at: float = Field(description="when its migration off the host finished")

    @classmethod
    def of(cls, mark: EvacuationMark) -> EvacuationMarkOut:
        return cls(
            instance=mark.instance,
            host=mark.host,
            audit_id=mark.audit_id,
            plan_id=mark.plan_id,
            at=mark.at,
        )


class ActionOut(BaseModel):
    id: str
    plan_id: str
    type: ActionType
    parameters: dict[str, Any]
    parents: list[str] = Field(description="ids of the actions that must succeed first")
    state: ActionState
    message: str
    explanation: str
    started_at: float | None
    finished_at: float | None

    @classmethod
    def of(cls, action: Action) -> ActionOut:
        return cls(
            id=action.id,
            plan_id=action.plan_id,
            type=action.type,
            parameters=dict(action.parameters),
            parents=list(action.parents),
            state=action.state,
            message=action.message,
            explanation=action.explanation,
            started_at=action.started_at,
            finished_at=action.finished_at,
        )


class PlanLimitsOut(BaseModel):
    """How many migrations of the plan may run at once."""

    max_per_source: int
    max_per_destination: int
    max_parallel: int

    @classmethod
    def of(cls, limits: PlanLimits) -> PlanLimitsOut:
        return cls(
            max_per_source=limits.max_per_source,
            max_per_destination=limits.max_per_destination,
            max_parallel=limits.max_parallel,
        )


class ActionPlanOut(BaseModel):
    id: str
    audit_id: str
    state: PlanState
    efficacy: dict[str, float]
    message: str
    created_at: float
    limits: PlanLimitsOut
    actions: list[ActionOut]

    @classmethod
    def of(cls, plan: ActionPlan) -> ActionPlanOut:
        return cls(
            id=plan.id,
            audit_id=plan.audit_id,
            state=plan.state,
            efficacy=dict(plan.efficacy),
            message=plan.message,
            created_at=plan.created_at,
            limits=PlanLimitsOut.of(plan.limits),
            actions=[ActionOut.of(a) for a in plan.actions],
        )


class Health(BaseModel):
    status: str = "ok"


class ErrorDetail(BaseModel):
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    message: str = Field(description="what is wrong, naming the thing or the input")
    field: str | None = Field(
        default=None, description="the offending input (query/path parameter or body field)"
    )
    details: list[ErrorDetail] = Field(
        default_factory=list, description="every problem found, when there are several"
    )


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    error: ErrorBody
