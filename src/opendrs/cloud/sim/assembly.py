"""Building a SimCloud from the `cloud.sim` settings: the only place the
simulator reads configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from opendrs.cloud.sim.cloud import SimCloud
from opendrs.cloud.sim.placement import spread
from opendrs.cloud.sim.power import PowerModel
from opendrs.cloud.sim.specs import HostSpec, IoProfile, VmSpec
from opendrs.cloud.sim.traces import load_day, select_traces
from opendrs.config import SimSettings
from opendrs.domain.clock import Clock

# Per-VM I/O at full load is drawn from these ranges (bytes/s), so disks and
# interfaces differ between VMs but stay the same for a given seed.
_DISK_READ_BPS = (0.5e6, 8e6)
_DISK_WRITE_BPS = (0.2e6, 4e6)
_NET_RX_BPS = (0.1e6, 12e6)
_NET_TX_BPS = (0.1e6, 12e6)
_MEMORY_USED = (0.35, 0.85)


def build_sim_cloud(
    settings: SimSettings, clock: Clock, trace_dir: Path, *, wrap: bool = True
) -> SimCloud:
    """The simulated cloud: `settings.hosts` identical hosts and `settings.instances`
    VMs, each running one of the day's traces, placed by `spread`; the trace's
    start is the clock's now. `wrap` replays the day again after it ends, else
    the last value holds."""
    source = str(trace_dir / f"{settings.day}.csv.gz")
    traces = select_traces(
        load_day(trace_dir, settings.day),
        settings.instances,
        settings.trace_selection,
        source=source,
    )
    rng = np.random.default_rng(settings.seed)
    power = PowerModel(settings.power_watts)
    width = max(2, len(str(settings.hosts - 1)))
    hosts = [
        HostSpec(
            name=f"host-{i:0{width}d}",
            cores=settings.host_cores,
            mips_per_core=settings.host_mips,
            memory_mb=settings.host_memory_mb,
            disk_gb=settings.host_disk_gb,
            bandwidth_mbps=settings.host_bandwidth_mbps,
            power=power,
            cpu_allocation_ratio=settings.cpu_allocation_ratio,
            ram_allocation_ratio=settings.ram_allocation_ratio,
        )
        for i in range(settings.hosts)
    ]
    width = max(3, len(str(len(traces) - 1)))
    vms = [
        VmSpec(
            name=f"vm-{i:0{width}d}",
            vcpus=int(rng.choice(settings.vm_vcpus)),
            mips_per_vcpu=settings.vm_mips,
            memory_mb=int(rng.choice(settings.vm_memory_mb)),
            disk_gb=settings.vm_disk_gb,
            trace=trace,
            memory_used_fraction=float(rng.uniform(*_MEMORY_USED)),
            io=IoProfile(
                disk_read_bps=float(rng.uniform(*_DISK_READ_BPS)),
                disk_write_bps=float(rng.uniform(*_DISK_WRITE_BPS)),
                net_rx_bps=float(rng.uniform(*_NET_RX_BPS)),
                net_tx_bps=float(rng.uniform(*_NET_TX_BPS)),
            ),
        )
        for i, trace in enumerate(traces)
    ]
    return SimCloud(hosts, vms, spread(hosts, vms, settings.seed), clock, wrap=wrap)
