"""Ceilometer meters from raw counters: names, units, types and labels of every
sample an agent emits, grouped by the plugin hook that receives them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from opendrs.agent.plugin import Hook
from opendrs.agent.rates import RateTable, cpu_util
from opendrs.domain.counters import DeviceBytes, HostCounters, InstanceCounters
from opendrs.domain.errors import InvalidInput
from opendrs.domain.sample import EntityKind, Sample, SampleRow, SampleType

GAUGE = SampleType.GAUGE
CUMULATIVE = SampleType.CUMULATIVE
_NONE: Mapping[str, str] = {}  # shared by every row without labels: never written to

# (cumulative bytes meter, its ops meter, ops unit, which half of DeviceBytes).
_DISK_METERS = (
    ("disk.device.read.bytes", "disk.device.read.requests", "request", "read"),
    ("disk.device.write.bytes", "disk.device.write.requests", "request", "write"),
)
_NET_METERS = (
    ("network.incoming.bytes", "network.incoming.packets", "packet", "read"),
    ("network.outgoing.bytes", "network.outgoing.packets", "packet", "write"),
)


@dataclass(frozen=True, slots=True)
class InstanceSamples:
    """One instance's samples of one poll, by the hook that receives them."""

    by_hook: Mapping[Hook, tuple[Sample, ...]]

    @property
    def all(self) -> list[Sample]:
        return [s for group in self.by_hook.values() for s in group]


def instance_samples(c: InstanceCounters, rates: RateTable, host: str) -> InstanceSamples:
    """Samples of one instance; rates need a previous observation in `rates`.

    Raises InvalidInput (before touching `rates`) when the counters make no sense.
    """
    return InstanceSamples(
        {
            hook: tuple([Sample(*row) for row in rows])
            for hook, rows in instance_rows(c, rates, host).items()
        }
    )


# Label maps are shared between the rows of one device, and kept from poll to poll.
_LABELS: dict[tuple[str, str, bool], Mapping[str, str]] = {}
_LABELS_KEPT = 100_000


def _labels(label: str, device: str, volume: bool) -> Mapping[str, str]:
    key = (label, device, volume)
    found = _LABELS.get(key)
    if found is None:
        if len(_LABELS) >= _LABELS_KEPT:
            _LABELS.clear()
        found = _LABELS[key] = {label: device, "volume": "true"} if volume else {label: device}
    return found


def instance_rows(c: InstanceCounters, rates: RateTable, host: str) -> dict[Hook, list[SampleRow]]:
    """As `instance_samples`, as rows (every hook present, possibly empty)."""
    _check_instance(c)
    name, t = c.instance, c.time
    instance = EntityKind.INSTANCE
    rate = rates.rate

    cpu_ns = float(c.cpu_time_ns)
    ns_rate = rate(name, "cpu", cpu_ns, t)
    vcpus = float(c.vcpus)
    cpu: list[SampleRow]
    if ns_rate is None:
        cpu = [
            ("cpu", name, cpu_ns, "ns", CUMULATIVE, t, instance, host, _NONE),
            ("vcpus", name, vcpus, "vcpu", GAUGE, t, instance, host, _NONE),
        ]
    else:
        util = cpu_util(ns_rate, c.vcpus)
        cpu = [
            ("cpu", name, cpu_ns, "ns", CUMULATIVE, t, instance, host, _NONE),
            ("cpu_util", name, util, "%", GAUGE, t, instance, host, _NONE),
            ("vcpus", name, vcpus, "vcpu", GAUGE, t, instance, host, _NONE),
        ]
    ram: list[SampleRow] = [
        ("memory", name, float(c.memory_mb), "MB", GAUGE, t, instance, host, _NONE)
    ]
    if c.memory_used_mb is not None:
        used = float(c.memory_used_mb)
        ram.append(("memory.usage", name, used, "MB", GAUGE, t, instance, host, _NONE))

    def devices(
        meters: tuple[tuple[str, str, str, str], ...],
        found: Mapping[str, DeviceBytes],
        label: str,
        volume: bool,
        series_prefix: str,
    ) -> list[SampleRow]:
        out: list[SampleRow] = []
        if not found:
            return out
        append = out.append
        for device in sorted(found) if len(found) > 1 else found:
            counts = found[device]
            labels = _labels(label, device, volume)
            series = series_prefix + device
            for meter, ops_meter, ops_unit, half in meters:
                reading = half == "read"
                value = float(counts.read if reading else counts.write)
                append((meter, name, value, "B", CUMULATIVE, t, instance, host, labels))
                per_second = rate(name, meter, value, t, series=series)
                if per_second is not None:
                    append(
                        (meter + ".rate", name, per_second, "B/s", GAUGE, t, instance, host, labels)
                    )
                ops = counts.read_ops if reading else counts.write_ops
                if ops is not None:
                    append(
                        (
                            ops_meter,
                            name,
                            float(ops),
                            ops_unit,
                            CUMULATIVE,
                            t,
                            instance,
                            host,
                            labels,
                        )
                    )
        return out

    return {
        Hook.CPU: cpu,
        Hook.RAM: ram,
        Hook.DISK: devices(_DISK_METERS, c.disks, "device", False, "disk:"),
        Hook.VOLUME: devices(_DISK_METERS, c.volumes, "device", True, "vol:"),
        Hook.BANDWIDTH: devices(_NET_METERS, c.interfaces, "interface", False, "net:"),
    }


def host_samples(c: HostCounters, rates: RateTable) -> list[Sample]:
    """Samples of the host itself; its CPU percent needs a previous observation."""
    return [Sample(*row) for row in host_rows(c, rates)]


def host_rows(c: HostCounters, rates: RateTable) -> list[SampleRow]:
    """As `host_samples`, as rows."""
    _check_host(c)
    name, t = c.host, c.time
    host = EntityKind.HOST

    def row(meter: str, value: float, unit: str) -> SampleRow:
        return (meter, name, value, unit, GAUGE, t, host, name, _NONE)

    out: list[SampleRow] = []
    busy = rates.rate(name, "compute.node.cpu.time", float(c.cpu_time_ns), t)
    if busy is not None:
        out.append(row("compute.node.cpu.percent", cpu_util(busy, c.cores), "%"))
    free = min(max(c.memory_free_mb, 0.0), float(c.memory_mb))
    out.append(row("memory.free", free, "MB"))
    out.append(row("memory.used", c.memory_mb - free, "MB"))
    out.append(row("memory.free.percent", 100.0 * free / c.memory_mb, "%"))
    return out


def _check_instance(c: InstanceCounters) -> None:
    source = f"counters of instance {c.instance!r}"
    if not c.instance:
        raise InvalidInput("no instance name", source=source, field="instance")
    if c.vcpus < 1:
        raise InvalidInput(f"vcpus must be at least 1, got {c.vcpus}", source=source, field="vcpus")
    if c.cpu_time_ns < 0:
        raise InvalidInput("negative cpu time", source=source, field="cpu_time_ns")
    if c.memory_mb < 0:
        raise InvalidInput("negative memory", source=source, field="memory_mb")
    if not math.isfinite(c.time):
        raise InvalidInput("time is not a number", source=source, field="time")
    for kind, found in (("disks", c.disks), ("interfaces", c.interfaces), ("volumes", c.volumes)):
        for device, counts in found.items():
            if counts.read < 0 or counts.write < 0:
                raise InvalidInput("negative byte count", source=source, field=f"{kind}.{device}")


def _check_host(c: HostCounters) -> None:
    source = f"counters of host {c.host!r}"
    if c.cores < 1:
        raise InvalidInput(f"cores must be at least 1, got {c.cores}", source=source, field="cores")
    if c.memory_mb <= 0:
        raise InvalidInput("memory_mb must be positive", source=source, field="memory_mb")
    if c.cpu_time_ns < 0:
        raise InvalidInput("negative cpu time", source=source, field="cpu_time_ns")
    if not math.isfinite(c.time) or not math.isfinite(c.memory_free_mb):
        raise InvalidInput("time or free memory is not a number", source=source)
