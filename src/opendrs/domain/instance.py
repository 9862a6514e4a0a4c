"""An instance (VM) with its flavor, placement and server groups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class InstanceState(StrEnum):
    ACTIVE = "active"
    STOPPED = "stopped"
    MIGRATING = "migrating"
    ERROR = "error"
    DELETED = "deleted"


class GroupPolicy(StrEnum):
    AFFINITY = "affinity"
    ANTI_AFFINITY = "anti-affinity"
    SOFT_AFFINITY = "soft-affinity"
    SOFT_ANTI_AFFINITY = "soft-anti-affinity"


@dataclass(frozen=True, slots=True)
class ServerGroup:
    name: str
    policy: GroupPolicy


@dataclass(frozen=True, slots=True)
class Flavor:
    name: str
    vcpus: int
    memory_mb: int
    disk_gb: int = 0


@dataclass(frozen=True, slots=True)
class Instance:
    """One VM: what it asks for (its flavor), where it runs, what it is doing."""

    name: str
    host: str
    flavor: Flavor
    state: InstanceState = InstanceState.ACTIVE
    groups: tuple[str, ...] = ()
    project: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def vcpus(self) -> int:
        return self.flavor.vcpus

    @property
    def memory_mb(self) -> int:
        return self.flavor.memory_mb

    @property
    def disk_gb(self) -> int:
        return self.flavor.disk_gb

    @property
    def cpu_util(self) -> float:
        """Latest measured CPU use in percent of its own vCPUs (0 when unknown)."""
        return self.metrics.get("cpu_util", 0.0)

    @property
    def cpu_cores_used(self) -> float:
        """CPU in use, in host cores (vCPUs × utilisation)."""
        return self.vcpus * self.cpu_util / 100.0

    @property
    def live(self) -> bool:
        """Running: it moves by live migration (a stopped one by cold migration)."""
        return self.state == InstanceState.ACTIVE

    @property
    def movable(self) -> bool:
        return self.metadata.get("never_migrate", "false").lower() != "true"
