"""What a simulated host and a simulated VM are made of: fixed capacities,
power model, trace and I/O profile (the state that changes lives in SimCloud)."""

from __future__ import annotations

from dataclasses import dataclass

from opendrs.cloud.sim.power import PowerModel
from opendrs.cloud.sim.traces import Trace
from opendrs.domain.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class HostSpec:
    name: str
    cores: int
    mips_per_core: float
    memory_mb: int
    disk_gb: int
    bandwidth_mbps: float
    power: PowerModel
    cpu_allocation_ratio: float = 1.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0

    def __post_init__(self) -> None:
        source = f"sim host {self.name}"
        if self.cores < 1:
            raise InvalidInput(f"needs at least one core, got {self.cores}", source=source)
        if self.mips_per_core <= 0 or self.bandwidth_mbps <= 0:
            raise InvalidInput("MIPS and bandwidth must be positive", source=source)
        if self.memory_mb <= 0 or self.disk_gb < 0:
            raise InvalidInput("memory must be positive and disk not negative", source=source)
        ratios = (self.cpu_allocation_ratio, self.ram_allocation_ratio, self.disk_allocation_ratio)
        if min(ratios) <= 0:
            raise InvalidInput("allocation ratios must be positive", source=source)

    @property
    def vcpu_capacity(self) -> float:
        return self.cores * self.cpu_allocation_ratio

    @property
    def memory_capacity_mb(self) -> float:
        return self.memory_mb * self.ram_allocation_ratio

    @property
    def disk_capacity_gb(self) -> float:
        return self.disk_gb * self.disk_allocation_ratio


@dataclass(frozen=True, slots=True)
class IoProfile:
    """Bytes per second a VM moves at full CPU load; at idle it keeps `idle_share` of them."""

    disk_read_bps: float = 0.0
    disk_write_bps: float = 0.0
    net_rx_bps: float = 0.0
    net_tx_bps: float = 0.0
    idle_share: float = 0.05


@dataclass(frozen=True, slots=True)
class VmSpec:
    """A VM. Its trace is a fraction of `mips_per_vcpu`, as in CloudSim whose VMs have
    one PE: at utilisation u it wants u·mips_per_vcpu MIPS, i.e. u·mips_per_vcpu /
    host MIPS cores, never more than its vCPUs (extra vCPUs are headroom)."""

    name: str
    vcpus: int
    mips_per_vcpu: float
    memory_mb: int
    disk_gb: int
    trace: Trace
    memory_used_fraction: float = 0.5
    io: IoProfile = IoProfile()

    def __post_init__(self) -> None:
        source = f"sim instance {self.name}"
        if self.vcpus < 1:
            raise InvalidInput(f"needs at least one vCPU, got {self.vcpus}", source=source)
        if self.mips_per_vcpu <= 0 or self.memory_mb <= 0 or self.disk_gb < 0:
            raise InvalidInput("MIPS and memory must be positive", source=source)
        if not 0.0 <= self.memory_used_fraction <= 1.0:
            raise InvalidInput("memory_used_fraction must be within 0..1", source=source)

    @property
    def flavor_name(self) -> str:
        return f"sim.{self.vcpus}c{self.memory_mb}m{self.disk_gb}g"
