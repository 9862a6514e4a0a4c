"""The typed input of a consolidation round: hosts and VMs as numpy arrays, with each
VM's recent utilisation history, so rounds over thousands of hosts stay vectorised."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from opendrs.domain.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

HISTORY_LENGTH = 30
"""Points of utilisation history kept per VM (CloudSim's PowerVm.HISTORY_LENGTH)."""


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One moment of a cluster. Hosts are indexed 0..n-1, VMs 0..m-1; a host's VMs are
    in index order (the order they arrived on it). Histories are utilisation fractions
    of the VM's nominal MIPS, newest first, zero-padded, `vm_history_length` recorded."""

    host_names: tuple[str, ...]
    host_mips: FloatArray
    host_pe_mips: FloatArray
    host_power: FloatArray  # (n, 11): watts at 0, 10, ... 100 % CPU
    host_used_mips: FloatArray  # allocated at the last measurement
    host_free_mips: FloatArray  # what the CPU scheduler can still hand out
    host_memory_free_mb: FloatArray  # +inf where memory is not reserved
    host_on: BoolArray
    host_migration_mb_s: FloatArray  # migration bandwidth into/out of the host
    vm_names: tuple[str, ...]
    vm_host: IntArray
    vm_mips: FloatArray
    vm_memory_mb: FloatArray
    vm_demand: FloatArray  # MIPS requested now
    vm_history: FloatArray  # (m, HISTORY_LENGTH)
    vm_history_length: IntArray
    vm_migrating: BoolArray
    interval: float = 300.0
    now: float = 0.0
    step: int = 0
    vm_moved_at: FloatArray | None = None
    """When each VM last finished a migration (-inf: never), for anti-ping-pong."""

    def __post_init__(self) -> None:
        n, m = len(self.host_names), len(self.vm_names)
        for label, array, size in (
            ("host_mips", self.host_mips, n),
            ("host_pe_mips", self.host_pe_mips, n),
            ("host_used_mips", self.host_used_mips, n),
            ("host_free_mips", self.host_free_mips, n),
            ("host_memory_free_mb", self.host_memory_free_mb, n),
            ("host_on", self.host_on, n),
            ("host_migration_mb_s", self.host_migration_mb_s, n),
            ("vm_host", self.vm_host, m),
            ("vm_mips", self.vm_mips, m),
            ("vm_memory_mb", self.vm_memory_mb, m),
            ("vm_demand", self.vm_demand, m),
            ("vm_history_length", self.vm_history_length, m),
            ("vm_migrating", self.vm_migrating, m),
        ):
            if array.shape != (size,):
                raise InvalidInput(
                    f"expected shape ({size},), got {array.shape}", source="snapshot", field=label
                )
        if self.host_power.shape != (n, 11):
            raise InvalidInput("expected (hosts, 11) watts", source="snapshot", field="host_power")
        if self.vm_history.shape != (m, HISTORY_LENGTH):
            raise InvalidInput(
                f"expected (VMs, {HISTORY_LENGTH})", source="snapshot", field="vm_history"
            )
        if m and (self.vm_host.min() < 0 or self.vm_host.max() >= n):
            raise InvalidInput("a VM is on an unknown host", source="snapshot", field="vm_host")
        if n and self.host_mips.min() <= 0:
            raise InvalidInput("host MIPS must be positive", source="snapshot", field="host_mips")

    @property
    def hosts(self) -> int:
        return len(self.host_names)

    @property
    def vms(self) -> int:
        return len(self.vm_names)

    @property
    def host_utilisation(self) -> FloatArray:
        """Measured utilisation (0..1), CloudSim-style: just above 1 reads as 1."""
        u: FloatArray = self.host_used_mips / self.host_mips
        return np.where((u > 1.0) & (u < 1.01), 1.0, u)


def power_at(table: FloatArray, hosts: IntArray, utilisation: FloatArray) -> FloatArray:
    """Watts of `hosts` at `utilisation` (0..1), linear between the decile points."""
    # maximum/minimum rather than np.clip: the same values, less per-call overhead.
    u = np.minimum(np.maximum(utilisation, 0.0), 1.0) * 10.0
    seg = np.minimum(u.astype(np.int64), 9)
    flat = table.ravel()
    base = hosts * 11 + seg
    low = flat.take(base)
    watts: FloatArray = low + (flat.take(base + 1) - low) * (u - seg)
    return watts
