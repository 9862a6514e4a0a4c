"""Raw counters as a hypervisor reports them (libvirt's shapes): the agent
turns these into rates; drivers only report, never compute rates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class DeviceBytes:
    """Cumulative bytes through one disk (read/write) or interface (rx/tx), and
    the requests (disk) or packets (interface) behind them when the driver knows."""

    read: int = 0
    write: int = 0
    read_ops: int | None = None
    write_ops: int | None = None


@dataclass(frozen=True, slots=True)
class InstanceCounters:
    instance: str
    time: float
    vcpus: int
    cpu_time_ns: int
    memory_mb: int
    memory_used_mb: float | None = None
    disks: Mapping[str, DeviceBytes] = field(default_factory=dict)
    interfaces: Mapping[str, DeviceBytes] = field(default_factory=dict)
    volumes: Mapping[str, DeviceBytes] = field(default_factory=dict)
    flavor: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HostCounters:
    host: str
    time: float
    cores: int
    cpu_time_ns: int
    memory_mb: int
    memory_free_mb: float
    local_gb: int = 0
    local_gb_free: float = 0.0
