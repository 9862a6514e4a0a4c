"""Small snapshots for the consolidation tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from opendrs.decision.consolidation.snapshot import HISTORY_LENGTH, Snapshot

G4 = (86.0, 89.4, 92.6, 96.0, 99.5, 102.0, 106.0, 108.0, 112.0, 114.0, 117.0)
G5 = (93.7, 97.0, 101.0, 105.0, 110.0, 116.0, 121.0, 125.0, 129.0, 133.0, 135.0)


def snapshot(
    host_mips: Sequence[float],
    vms: Sequence[tuple[int, float, float, float]],
    histories: Sequence[Sequence[float]] | None = None,
    *,
    memory: Sequence[float] | None = None,
    moved_at: Sequence[float] | None = None,
    now: float = 0.0,
    on: Sequence[bool] | None = None,
) -> Snapshot:
    """`vms` as (host, nominal MIPS, demand MIPS, RAM MB); hosts have two PEs."""
    n, m = len(host_mips), len(vms)
    mips = np.array(host_mips, dtype=np.float64)
    vm_host = np.array([v[0] for v in vms], dtype=np.int64)
    vm_mips = np.array([v[1] for v in vms], dtype=np.float64)
    demand = np.array([v[2] for v in vms], dtype=np.float64)
    ram = np.array([v[3] for v in vms], dtype=np.float64)
    history = np.zeros((m, HISTORY_LENGTH))
    lengths = np.zeros(m, dtype=np.int64)
    for i, values in enumerate(histories or []):
        history[i, : len(values)] = values
        lengths[i] = len(values)
    used = np.bincount(vm_host, weights=np.minimum(demand, mips[vm_host] / 2), minlength=n)
    tables = np.array([G5 if c > 4000 else G4 for c in host_mips])
    return Snapshot(
        host_names=tuple(f"h{i}" for i in range(n)),
        host_mips=mips,
        host_pe_mips=mips / 2,
        host_power=tables,
        host_used_mips=used,
        host_free_mips=np.maximum(mips - used, 0.0),
        host_memory_free_mb=np.full(n, np.inf) if memory is None else np.array(memory),
        host_on=(used > 0) if on is None else np.array(on, dtype=np.bool_),
        host_migration_mb_s=np.full(n, 62.5),
        vm_names=tuple(f"vm{i}" for i in range(m)),
        vm_host=vm_host,
        vm_mips=vm_mips,
        vm_memory_mb=ram,
        vm_demand=demand,
        vm_history=history,
        vm_history_length=lengths,
        vm_migrating=np.zeros(m, dtype=np.bool_),
        now=now,
        vm_moved_at=None if moved_at is None else np.array(moved_at, dtype=np.float64),
    )
