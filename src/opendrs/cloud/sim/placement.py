"""Initial placement of simulated VMs: round-robin over a seeded host order so
VMs spread, falling back to the next host that fits under the allocation ratios."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from opendrs.cloud.sim.specs import HostSpec, VmSpec
from opendrs.domain.errors import InvalidInput


def spread(hosts: Sequence[HostSpec], vms: Sequence[VmSpec], seed: int) -> dict[str, str]:
    """Instance name → host name; deterministic for a given seed.

    Raises InvalidInput when a VM fits on no host (vCPUs × cpu ratio, RAM × ram
    ratio, disk × disk ratio).
    """
    if not hosts:
        if vms:
            raise InvalidInput(f"{len(vms)} instances but no hosts", source="sim placement")
        return {}
    order = [hosts[int(i)] for i in np.random.default_rng(seed).permutation(len(hosts))]
    vcpus = dict.fromkeys((h.name for h in hosts), 0.0)
    memory = dict.fromkeys((h.name for h in hosts), 0.0)
    disk = dict.fromkeys((h.name for h in hosts), 0.0)
    placement: dict[str, str] = {}
    for i, vm in enumerate(vms):
        for k in range(len(order)):
            host = order[(i + k) % len(order)]
            if (
                vcpus[host.name] + vm.vcpus <= host.vcpu_capacity
                and memory[host.name] + vm.memory_mb <= host.memory_capacity_mb
                and disk[host.name] + vm.disk_gb <= host.disk_capacity_gb
            ):
                placement[vm.name] = host.name
                vcpus[host.name] += vm.vcpus
                memory[host.name] += vm.memory_mb
                disk[host.name] += vm.disk_gb
                break
        else:
            raise InvalidInput(
                f"instance {vm.name} ({vm.vcpus} vCPUs, {vm.memory_mb} MB, {vm.disk_gb} GB) "
                f"fits on no host; {i} of {len(vms)} placed",
                source="sim placement",
            )
    return placement
