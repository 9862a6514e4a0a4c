"""Power-aware best fit decreasing (PABFD): each VM goes to the host whose power rises
least, among hosts that can take its MIPS (and memory, where reserved) and that the
overload detector would not flag with it; ties go to the lowest host index."""

from __future__ import annotations

import numpy as np

from opendrs.decision.consolidation.detectors import Detector
from opendrs.decision.consolidation.load import Load, empty_load
from opendrs.decision.consolidation.snapshot import BoolArray, IntArray, Snapshot, power_at


def suitable(load: Load, vm: int, excluded: BoolArray) -> IntArray:
    """Hosts not excluded with room for `vm`'s current demand (and memory)."""
    s = load.snapshot
    demand = s.vm_demand[vm]
    fits = (
        ~excluded
        & (s.host_pe_mips >= demand)
        & (load.free >= demand)
        & (load.memory_free >= s.vm_memory_mb[vm])
    )
    hosts: IntArray = np.flatnonzero(fits)
    return hosts


def find_host(load: Load, vm: int, excluded: BoolArray, detector: Detector) -> int:
    """The PABFD destination of `vm`, or -1."""
    s = load.snapshot
    hosts = suitable(load, vm, excluded)
    if hosts.size == 0:
        return -1
    used = load.used[hosts]
    busy = used != 0.0
    busy_hosts = hosts[busy]
    if busy_hosts.size:
        flagged = detector.overloaded_with(load, busy_hosts, vm)
        if flagged.any():
            keep = np.ones(hosts.size, dtype=np.bool_)
            keep[busy] = ~flagged
            hosts = hosts[keep]
            if hosts.size == 0:
                return -1
            used = used[keep]
    after = (used + s.vm_demand[vm]) / s.host_mips[hosts]
    increase = power_at(s.host_power, hosts, after) - load.power_now[hosts]
    return int(hosts[int(np.argmin(increase))])


def place_all(snapshot: Snapshot, detector: Detector) -> IntArray:
    """Initial placement of every VM of `snapshot`, in index order, by PABFD on empty
    hosts (their current placement is ignored); -1 for a VM that fits nowhere."""
    load = empty_load(snapshot)
    excluded = np.zeros(snapshot.hosts, dtype=np.bool_)
    hosts = np.full(snapshot.vms, -1, dtype=np.int64)
    for vm in range(snapshot.vms):
        host = find_host(load, vm, excluded, detector)
        if host >= 0:
            load.add(vm, host)
            hosts[vm] = host
    return hosts
