"""A Snapshot from a domain Cluster, for live audits: cores stand for MIPS, the
measured `cpu_util` is the demand, `cpu_util.history.<j>` metrics (j = 0 newest, in
percent) the history, flavor memory is reserved, and only enabled hosts take VMs."""

from __future__ import annotations

import numpy as np

from opendrs.decision.consolidation.snapshot import HISTORY_LENGTH, Snapshot
from opendrs.domain.cluster import Cluster
from opendrs.domain.host import HostState

# HP ProLiant ML110 G5 (SPECpower), a stand-in when a host publishes no power curve.
DEFAULT_POWER = (93.7, 97.0, 101.0, 105.0, 110.0, 116.0, 121.0, 125.0, 129.0, 133.0, 135.0)
POWER_METRICS = tuple(f"power.at.{10 * i}" for i in range(11))
HISTORY_METRIC = "cpu_util.history.{}"
MIGRATION_MB_S = 62.5


def snapshot_from_cluster(cluster: Cluster) -> Snapshot:
    hosts = sorted(cluster.hosts.values(), key=lambda h: h.name)
    index = {h.name: i for i, h in enumerate(hosts)}
    instances = sorted(
        (i for i in cluster.instances.values() if i.host in index), key=lambda i: i.name
    )
    n, m = len(hosts), len(instances)
    cores = np.array([max(h.vcpus * h.cpu_allocation_ratio, 1e-9) for h in hosts])
    power = np.array(
        [
            [h.metrics[k] for k in POWER_METRICS]
            if all(k in h.metrics for k in POWER_METRICS)
            else list(DEFAULT_POWER)
            for h in hosts
        ],
        dtype=np.float64,
    ).reshape(n, 11)
    vm_host = np.array([index[i.host] for i in instances], dtype=np.int64)
    demand = np.array([i.cpu_cores_used for i in instances], dtype=np.float64)
    history = np.zeros((m, HISTORY_LENGTH))
    lengths = np.zeros(m, dtype=np.int64)
    for row, instance in enumerate(instances):
        for j in range(HISTORY_LENGTH):
            value = instance.metrics.get(HISTORY_METRIC.format(j))
            if value is None:
                break
            history[row, j] = value / 100.0
            lengths[row] = j + 1
    used = (np.bincount(vm_host, weights=demand, minlength=n) if m else np.zeros(n)).astype(
        np.float64
    )
    memory_used = (
        np.bincount(vm_host, weights=[float(i.memory_mb) for i in instances], minlength=n)
        if m
        else np.zeros(n)
    )
    memory = np.array(
        [h.memory_mb * h.ram_allocation_ratio - h.reserved_host_memory_mb for h in hosts]
    )
    takes = np.array([h.state in (HostState.ENABLED, HostState.OFF) for h in hosts])
    return Snapshot(
        host_names=tuple(h.name for h in hosts),
        host_mips=cores,
        host_pe_mips=cores.copy(),
        host_power=power,
        host_used_mips=used,
        host_free_mips=np.where(takes, np.maximum(cores - used, 0.0), 0.0),
        host_memory_free_mb=memory - memory_used,
        host_on=np.array([h.state != HostState.OFF for h in hosts]),
        host_migration_mb_s=np.full(n, MIGRATION_MB_S),
        vm_names=tuple(i.name for i in instances),
        vm_host=vm_host,
        vm_mips=np.array([float(i.vcpus) for i in instances]),
        vm_memory_mb=np.array([float(i.memory_mb) for i in instances]),
        vm_demand=demand,
        vm_history=history,
        vm_history_length=lengths,
        vm_migrating=np.array([i.state.value == "migrating" for i in instances], dtype=np.bool_),
    )
