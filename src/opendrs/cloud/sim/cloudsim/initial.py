"""Where VMs start: CloudSim's first fit with nominal resources (the NPA and DVFS runs),
and the snapshot a consolidation policy sees at t = 0 to place VMs itself."""

from __future__ import annotations

import numpy as np

from opendrs.cloud.sim.cloudsim.hardware import (
    HOST_BW,
    HOST_RAM_MB,
    MIGRATION_MB_S,
    VM_BW,
    Fleet,
    IntArray,
)
from opendrs.decision.consolidation.snapshot import HISTORY_LENGTH, Snapshot


def first_fit(fleet: Fleet, placed: IntArray | None = None) -> IntArray:
    """VM by VM, the first host (by index) with room for its nominal MIPS (on one PE),
    RAM and bandwidth; VMs already `placed` (host >= 0) stay and book their share."""
    n = fleet.hosts
    hosts = np.full(fleet.vms, -1, dtype=np.int64) if placed is None else placed.astype(np.int64)
    kept = hosts >= 0
    free_mips = fleet.host_mips - np.bincount(hosts[kept], fleet.vm_mips[kept], minlength=n)
    free_ram = HOST_RAM_MB - np.bincount(hosts[kept], fleet.vm_memory_mb[kept], minlength=n)
    free_bw = HOST_BW - VM_BW * np.bincount(hosts[kept], minlength=n)
    for vm in np.flatnonzero(~kept).tolist():
        mips, ram = fleet.vm_mips[vm], fleet.vm_memory_mb[vm]
        fits = (
            (fleet.host_pe_mips >= mips)
            & (free_mips >= mips)
            & (free_ram >= ram)
            & (free_bw >= VM_BW)
        )
        found = np.flatnonzero(fits)
        if found.size:
            h = int(found[0])
            hosts[vm] = h
            free_mips[h] -= mips
            free_ram[h] -= ram
            free_bw[h] -= VM_BW
    return hosts


def creation_snapshot(fleet: Fleet, *, book_nominal: bool = True) -> Snapshot:
    """Empty hosts and every VM asking for its nominal MIPS and RAM (t = 0). CloudSim's
    scheduler books the nominal MIPS of VMs being created (`book_nominal`); a real
    cloud books vCPUs with overcommit, so CPU then never refuses a VM at creation."""
    n, m = fleet.hosts, fleet.vms
    return Snapshot(
        host_names=fleet.host_names,
        host_mips=fleet.host_mips,
        host_pe_mips=fleet.host_pe_mips,
        host_power=fleet.host_power,
        host_used_mips=np.zeros(n),
        host_free_mips=fleet.host_mips.copy() if book_nominal else np.full(n, np.inf),
        host_memory_free_mb=np.full(n, HOST_RAM_MB),
        host_on=np.zeros(n, dtype=np.bool_),
        host_migration_mb_s=np.full(n, MIGRATION_MB_S),
        vm_names=fleet.vm_names,
        vm_host=np.zeros(m, dtype=np.int64),
        vm_mips=fleet.vm_mips,
        vm_memory_mb=fleet.vm_memory_mb,
        vm_demand=fleet.vm_mips.copy(),
        vm_history=np.zeros((m, HISTORY_LENGTH)),
        vm_history_length=np.zeros(m, dtype=np.int64),
        vm_migrating=np.zeros(m, dtype=np.bool_),
    )
