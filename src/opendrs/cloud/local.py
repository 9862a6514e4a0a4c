"""Raw counters of the machine the agent runs on, through psutil: so an agent
works on any Linux box without a hypervisor (it reports the host, no instances)."""

from __future__ import annotations

from pathlib import Path

import psutil

from opendrs.domain.clock import Clock, WallClock
from opendrs.domain.counters import HostCounters, InstanceCounters
from opendrs.domain.errors import DriverError

_MB = 1024 * 1024
_GB = 1024**3
_NS = 1_000_000_000
# Time the CPUs spent not waiting: psutil names differ per platform, absent ones count 0.
_BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")


class LocalStats:
    """The StatsSource of this machine; `disk_path` is the file system whose size
    is the host's local disk (Nova's instances directory on a compute host)."""

    def __init__(self, *, disk_path: Path = Path("/"), clock: Clock | None = None) -> None:
        self._disk_path = disk_path
        self._clock: Clock = clock or WallClock()

    def host_counters(self, host: str) -> HostCounters:
        try:
            times = psutil.cpu_times()
            memory = psutil.virtual_memory()
            cores = psutil.cpu_count(logical=True) or 1
            disk = psutil.disk_usage(str(self._disk_path))
        except (OSError, psutil.Error) as exc:
            raise DriverError(f"cannot read this host's counters: {exc}", transient=True) from exc
        busy_seconds = sum(getattr(times, name, 0.0) for name in _BUSY_FIELDS)
        return HostCounters(
            host=host,
            time=self._clock.now(),
            cores=cores,
            cpu_time_ns=int(busy_seconds * _NS),
            memory_mb=max(int(memory.total // _MB), 1),
            memory_free_mb=memory.available / _MB,
            local_gb=int(disk.total // _GB),
            local_gb_free=disk.free / _GB,
        )

    def instance_counters(self, host: str) -> list[InstanceCounters]:
        return []
