"""Scenario files (DESIGN.md): a cluster snapshot in YAML or JSON, validated
with errors naming file, line and field, and turned into a domain Cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from opendrs.domain.cluster import Cluster
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Flavor, GroupPolicy, Instance, InstanceState, ServerGroup
from opendrs.yamlfile import load_model

# A metric is one value (now) or a list of [timestamp, value] pairs; the
# snapshot keeps the latest value.
MetricValue = float | list[tuple[float, float]]


def _latest(metrics: dict[str, MetricValue]) -> dict[str, float]:
    latest: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, list):
            if value:
                latest[name] = float(max(value, key=lambda p: p[0])[1])
        else:
            latest[name] = float(value)
    return latest


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScenarioHost(_Strict):
    name: str = Field(min_length=1)
    vcpus: int = Field(ge=1)
    memory_mb: int = Field(ge=1)
    disk_gb: int = Field(0, ge=0)
    state: Literal["enabled", "disabled", "maintenance", "off"] = "enabled"
    disabled_reason: str | None = None
    cpu_allocation_ratio: float = Field(1.0, gt=0)
    ram_allocation_ratio: float = Field(1.0, gt=0)
    disk_allocation_ratio: float = Field(1.0, gt=0)
    reserved_host_cpus: int = Field(0, ge=0)
    reserved_host_memory_mb: int = Field(0, ge=0)
    aggregates: list[str] = Field(default_factory=list)
    availability_zone: str = "nova"
    metrics: dict[str, MetricValue] = Field(default_factory=dict)


class ScenarioInstance(_Strict):
    name: str = Field(min_length=1)
    host: str
    vcpus: int = Field(ge=1)
    memory_mb: int = Field(ge=1)
    disk_gb: int = Field(0, ge=0)
    flavor: str = ""
    state: Literal["active", "stopped"] = "active"
    groups: list[str] = Field(default_factory=list)
    project: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, MetricValue] = Field(default_factory=dict)


class ScenarioGroup(_Strict):
    name: str = Field(min_length=1)
    policy: Literal["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]


class Scenario(_Strict):
    hosts: list[ScenarioHost] = Field(min_length=1)
    instances: list[ScenarioInstance] = Field(default_factory=list)
    groups: list[ScenarioGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_resolve(self) -> Scenario:
        hosts = [h.name for h in self.hosts]
        if len(set(hosts)) != len(hosts):
            raise ValueError(
                f"duplicate host names: {sorted({h for h in hosts if hosts.count(h) > 1})}"
            )
        names = [i.name for i in self.instances]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"duplicate instance names: {dupes}")
        groups = {g.name for g in self.groups}
        for i in self.instances:
            if i.host not in hosts:
                raise ValueError(f"instance {i.name!r} is on unknown host {i.host!r}")
            unknown = [g for g in i.groups if g not in groups]
            if unknown:
                raise ValueError(f"instance {i.name!r} is in unknown groups {unknown}")
        return self

    def to_cluster(self) -> Cluster:
        instances = [
            Instance(
                name=i.name,
                host=i.host,
                flavor=Flavor(
                    i.flavor or f"{i.vcpus}c{i.memory_mb}m", i.vcpus, i.memory_mb, i.disk_gb
                ),
                state=InstanceState(i.state),
                groups=tuple(i.groups),
                project=i.project,
                metadata=dict(i.metadata),
                metrics=_latest(i.metrics),
            )
            for i in self.instances
        ]
        hosts = []
        for h in self.hosts:
            mine = [i for i in instances if i.host == h.name]
            hosts.append(
                Host(
                    name=h.name,
                    vcpus=h.vcpus,
                    memory_mb=h.memory_mb,
                    local_gb=h.disk_gb,
                    vcpus_used=sum(i.vcpus for i in mine),
                    memory_mb_used=sum(i.memory_mb for i in mine),
                    local_gb_used=sum(i.disk_gb for i in mine),
                    running_vms=sum(1 for i in mine if i.state == InstanceState.ACTIVE),
                    cpu_allocation_ratio=h.cpu_allocation_ratio,
                    ram_allocation_ratio=h.ram_allocation_ratio,
                    disk_allocation_ratio=h.disk_allocation_ratio,
                    reserved_host_cpus=h.reserved_host_cpus,
                    reserved_host_memory_mb=h.reserved_host_memory_mb,
                    state=HostState(h.state),
                    disabled_reason=h.disabled_reason,
                    aggregates=tuple(h.aggregates),
                    availability_zone=h.availability_zone,
                    metrics=_latest(h.metrics),
                )
            )
        groups = [ServerGroup(g.name, GroupPolicy(g.policy)) for g in self.groups]
        return Cluster.of(hosts, instances, groups)


def load_scenario(path: Path) -> Cluster:
    """Read and validate a scenario file; InvalidInput names file, line and field."""
    return load_model(Scenario, path).to_cluster()
