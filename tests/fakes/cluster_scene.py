"""A small, lifelike cluster in MemoryRepositories (hosts, instances, alarms, audits,
plans) for the API and dashboard tests; every name here is asserted somewhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fakes.repositories import MemoryRepositories
from opendrs.domain.action import (
    Action,
    ActionPlan,
    ActionState,
    ActionType,
    PlanLimits,
    PlanState,
)
from opendrs.domain.alarm import AlarmState, AlarmTransition, Severity
from opendrs.domain.audit import Audit, AuditState, AuditType
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Flavor, Instance

# 2011-03-03 00:00 UTC, the first day of the PlanetLab traces.
T0 = 1299110400.0
SMALL = Flavor("m1.small", vcpus=2, memory_mb=2048, disk_gb=20)
LARGE = Flavor("m1.large", vcpus=4, memory_mb=8192, disk_gb=80)


def hosts() -> list[Host]:
    return [
        Host(
            name="compute-01",
            vcpus=16,
            memory_mb=65536,
            local_gb=500,
            vcpus_used=6,
            memory_mb_used=12288,
            running_vms=3,
            metrics={"compute.node.cpu.percent": 34.5, "memory.used": 20480.0},
        ),
        Host(
            name="compute-02",
            vcpus=16,
            memory_mb=65536,
            local_gb=500,
            vcpus_used=12,
            memory_mb_used=40960,
            running_vms=3,
            metrics={"compute.node.cpu.percent": 92.0, "memory.used": 58982.4},
        ),
        Host(
            name="compute-03",
            vcpus=8,
            memory_mb=32768,
            state=HostState.MAINTENANCE,
            disabled_reason="disk replacement",
        ),
        # No host metric: its CPU % comes from its instances' cpu_util.
        Host(name="compute-04", vcpus=8, memory_mb=32768, memory_mb_used=10240, running_vms=2),
        Host(name="compute-05", vcpus=8, memory_mb=32768, state=HostState.OFF),
    ]


def instances() -> list[Instance]:
    def vm(name: str, host: str, flavor: Flavor, cpu: float) -> Instance:
        return Instance(
            name=name,
            host=host,
            flavor=flavor,
            project="demo",
            metrics={"cpu_util": cpu, "memory.usage": flavor.memory_mb / 2},
        )

    return [
        vm("vm-01", "compute-01", SMALL, 20.0),
        vm("vm-02", "compute-01", SMALL, 35.0),
        vm("vm-03", "compute-01", LARGE, 50.0),
        vm("vm-04", "compute-02", LARGE, 95.0),
        vm("vm-05", "compute-02", LARGE, 90.0),
        vm("vm-06", "compute-02", SMALL, 88.0),
        vm("vm-07", "compute-04", LARGE, 60.0),  # 4 vCPU x 60% = 2.4 cores
        vm("vm-08", "compute-04", SMALL, 40.0),  # 2 vCPU x 40% = 0.8 cores -> 40% of 8
    ]


def transitions() -> list[AlarmTransition]:
    def move(
        rule: str,
        entity: str,
        previous: AlarmState,
        current: AlarmState,
        at: float,
        value: float | None = None,
        **kw: Any,
    ) -> AlarmTransition:
        return AlarmTransition(rule, entity, previous, current, T0 + at, value, **kw)

    ok, pending, alarm, no_data = (
        AlarmState.OK,
        AlarmState.PENDING,
        AlarmState.ALARM,
        AlarmState.NO_DATA,
    )
    return [
        move("vm_memory_high", "vm-03", ok, alarm, 300, value=97.0, reason="memory 97% > 95%"),
        move("host_cpu_high", "compute-02", ok, pending, 600, value=91.0),
        move(
            "host_cpu_high",
            "compute-02",
            pending,
            alarm,
            900,
            value=92.0,
            severity=Severity.CRITICAL,
            reason="cpu 92% > 80% for 5m",
        ),
        move("vm_memory_high", "vm-03", alarm, ok, 1200, value=61.0, reason="back under 90%"),
        move("host_silent", "compute-05", ok, no_data, 1500, severity=Severity.INFO),
    ]


def audits() -> list[Audit]:
    return [
        Audit(
            goal="server_consolidation",
            strategy="vm_consolidation",
            state=AuditState.SUCCEEDED,
            created_at=T0 + 100,
            id="audit-old",
        ),
        Audit(
            goal="workload_balancing",
            strategy="overload_relief",
            audit_type=AuditType.EVENT,
            scope=("compute-02",),
            parameters={"threshold": 80},
            state=AuditState.ONGOING,
            trigger="alarm host_cpu_high/compute-02",
            created_at=T0 + 910,
            id="audit-new",
        ),
    ]


def _action(
    id: str,
    type: ActionType,
    parameters: Mapping[str, Any],
    state: ActionState,
    parents: tuple[str, ...] = (),
    **kw: Any,
) -> Action:
    return Action(type=type, parameters=parameters, parents=parents, state=state, id=id, **kw)


def plans() -> list[ActionPlan]:
    done = ActionState.SUCCEEDED
    old = ActionPlan(
        audit_id="audit-old",
        state=PlanState.SUCCEEDED,
        created_at=T0 + 120,
        efficacy={"released_nodes": 1},
        id="plan-old",
        actions=(
            _action(
                "act-old-1",
                ActionType.MIGRATE,
                {"instance": "vm-08", "source": "compute-05", "destination": "compute-04"},
                done,
                started_at=T0 + 130,
                finished_at=T0 + 160,
            ),
            _action(
                "act-old-2",
                ActionType.CHANGE_NODE_STATE,
                {"host": "compute-05", "state": "off"},
                done,
                parents=("act-old-1",),
            ),
        ),
    )
    new = ActionPlan(
        audit_id="audit-new",
        state=PlanState.ONGOING,
        created_at=T0 + 920,
        efficacy={"migrations": 2, "hosts_relieved": 1},
        message="relieve compute-02",
        id="plan-new",
        limits=PlanLimits(max_per_source=1, max_per_destination=2, max_parallel=4),
        actions=(
            _action(
                "act-new-1",
                ActionType.MIGRATE,
                {"instance": "vm-05", "source": "compute-02", "destination": "compute-01"},
                ActionState.ONGOING,
                explanation="compute-02 at 92% CPU; compute-01 has the most room",
                started_at=T0 + 930,
            ),
            _action(
                "act-new-2",
                ActionType.MIGRATE,
                {"instance": "vm-06", "source": "compute-02", "destination": "compute-04"},
                ActionState.PENDING,
                parents=("act-new-1",),
                explanation="brings compute-02 under 80%",
            ),
            _action(
                "act-new-3",
                ActionType.NOP,
                {"message": "done"},
                ActionState.PENDING,
                parents=("act-new-2",),
            ),
        ),
    )
    return [old, new]


def populated() -> MemoryRepositories:
    repos = MemoryRepositories()
    repos.upsert_hosts(hosts())
    repos.upsert_instances(instances())
    for t in transitions():
        repos.record(t)
    for a in audits():
        repos.save_audit(a)
    for p in plans():
        repos.save_plan(p)
    return repos


def status() -> dict[str, Any]:
    return {
        "time": T0 + 1500,
        "step": 5,
        "mode": "demo",
        "counters": {"samples": 12840, "audits": 2, "actions_failed": 0},
    }
