"""A compute host with Nova's compute_nodes fields, and its state machine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from opendrs.domain.transitions import check_transition


class HostState(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    MAINTENANCE = "maintenance"
    OFF = "off"


# Any state may be left for any other except that an OFF host must be powered
# on (back to disabled) before it takes work, as DRS-class systems do.
_HOST_MOVES: dict[HostState, frozenset[HostState]] = {
    HostState.ENABLED: frozenset({HostState.DISABLED, HostState.MAINTENANCE, HostState.OFF}),
    HostState.DISABLED: frozenset({HostState.ENABLED, HostState.MAINTENANCE, HostState.OFF}),
    HostState.MAINTENANCE: frozenset({HostState.ENABLED, HostState.DISABLED, HostState.OFF}),
    HostState.OFF: frozenset({HostState.DISABLED, HostState.MAINTENANCE, HostState.ENABLED}),
}


@dataclass(frozen=True, slots=True)
class Host:
    """Capacity, reported use and state of one hypervisor (Nova compute_nodes)."""

    name: str
    vcpus: int
    memory_mb: int
    local_gb: int = 0
    vcpus_used: int = 0
    memory_mb_used: int = 0
    local_gb_used: int = 0
    running_vms: int = 0
    current_workload: int = 0
    disk_available_least: int | None = None
    hypervisor_type: str = "QEMU"
    hypervisor_version: int = 0
    cpu_info: str = "{}"
    cpu_allocation_ratio: float = 1.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    reserved_host_cpus: int = 0
    reserved_host_memory_mb: int = 0
    reserved_host_disk_mb: int = 0
    state: HostState = HostState.ENABLED
    disabled_reason: str | None = None
    aggregates: tuple[str, ...] = ()
    availability_zone: str = "nova"
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def free_ram_mb(self) -> int:
        return self.memory_mb - self.memory_mb_used

    @property
    def free_disk_gb(self) -> int:
        return self.local_gb - self.local_gb_used

    # Placement's rule for what a host may hold: (total - reserved) × allocation ratio.
    @property
    def allocatable_vcpus(self) -> float:
        return (self.vcpus - self.reserved_host_cpus) * self.cpu_allocation_ratio

    @property
    def allocatable_memory_mb(self) -> float:
        return (self.memory_mb - self.reserved_host_memory_mb) * self.ram_allocation_ratio

    @property
    def allocatable_disk_gb(self) -> float:
        return (self.local_gb - self.reserved_host_disk_mb / 1024.0) * self.disk_allocation_ratio

    @property
    def cpu_percent(self) -> float | None:
        """Latest measured CPU use of the host, in percent of its cores."""
        return self.metrics.get("compute.node.cpu.percent")

    def with_state(self, wanted: HostState, reason: str | None = None) -> Host:
        if wanted == self.state:
            return replace(self, disabled_reason=reason)
        check_transition("host", _HOST_MOVES, self.state, wanted)
        return replace(self, state=wanted, disabled_reason=reason)
