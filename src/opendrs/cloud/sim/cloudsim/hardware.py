"""The fleet of CloudSim's PlanetLab examples: HP ProLiant ML110 G4/G5 hosts with their
SPECpower curves, and the four VM types (EC2-like, RAM halved)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

G4_WATTS = (86.0, 89.4, 92.6, 96.0, 99.5, 102.0, 106.0, 108.0, 112.0, 114.0, 117.0)
G5_WATTS = (93.7, 97.0, 101.0, 105.0, 110.0, 116.0, 121.0, 125.0, 129.0, 133.0, 135.0)
HOST_PE_MIPS = (1860.0, 2660.0)
HOST_PES = 2
HOST_RAM_MB = 4096.0
HOST_BW = 1_000_000.0  # CloudSim's units; "1 Gbit/s"
VM_BW = 100_000.0
VM_MIPS = (2500.0, 2000.0, 1000.0, 500.0)
VM_RAM_MB = (870.0, 1740.0, 1740.0, 613.0)
MIGRATION_MB_S = HOST_BW / (2 * 8000)  # half the link, in MB/s: 62.5


@dataclass(frozen=True, eq=False)
class Fleet:
    host_names: tuple[str, ...]
    host_type: IntArray
    host_pe_mips: FloatArray
    host_mips: FloatArray
    host_power: FloatArray  # (n, 11)
    vm_names: tuple[str, ...]
    vm_mips: FloatArray
    vm_memory_mb: FloatArray

    @property
    def hosts(self) -> int:
        return len(self.host_names)

    @property
    def vms(self) -> int:
        return len(self.vm_names)


def vm_types(count: int) -> IntArray:
    """VM i has type floor(i / ceil(N/4)): four contiguous blocks."""
    block = max(math.ceil(count / 4), 1)
    types: IntArray = np.minimum(np.arange(count, dtype=np.int64) // block, 3)
    return types


def build_fleet(hosts: int, vm_names: tuple[str, ...]) -> Fleet:
    host_type = np.arange(hosts, dtype=np.int64) % 2
    pe = np.array(HOST_PE_MIPS)[host_type]
    tables = np.array([G4_WATTS, G5_WATTS])
    types = vm_types(len(vm_names))
    return Fleet(
        host_names=tuple(f"host-{i:05d}" for i in range(hosts)),
        host_type=host_type,
        host_pe_mips=pe,
        host_mips=pe * HOST_PES,
        host_power=tables[host_type],
        vm_names=vm_names,
        vm_mips=np.array(VM_MIPS)[types],
        vm_memory_mb=np.array(VM_RAM_MB)[types],
    )
