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
from opendrs.domain.sample import EntityKind, Sample, SampleType

GAUGE = SampleType.GAUGE
CUMULATIVE = SampleType.CUMULATIVE

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
    _check_instance(c)
    name, t = c.instance, c.time
    instance = EntityKind.INSTANCE
    rate = rates.rate

    cpu_ns = float(c.cpu_time_ns)
    ns_rate = rate(name, "cpu", cpu_ns, t)
    cpu: tuple[Sample, ...]
    if ns_rate is None:
        cpu = (
            Sample("cpu", name, cpu_ns, "ns", CUMULATIVE, t, instance, host),
            Sample("vcpus", name, float(c.vcpus), "vcpu", GAUGE, t, instance, host),
        )
    else:
        cpu = (
            Sample("cpu", name, cpu_ns, "ns", CUMULATIVE, t, instance, host),
            Sample("cpu_util", name, cpu_util(ns_rate, c.vcpus), "%", GAUGE, t, instance, host),
            Sample("vcpus", name, float(c.vcpus), "vcpu", GAUGE, t, instance, host),
        )
    memory = Sample("memory", name, float(c.memory_mb), "MB", GAUGE, t, instance, host)
    ram: tuple[Sample, ...] = (memory,)
    if c.memory_used_mb is not None:
        used = float(c.memory_used_mb)
        ram = (memory, Sample("memory.usage", name, used, "MB", GAUGE, t, instance, host))

    def devices(
        meters: tuple[tuple[str, str, str, str], ...],
        found: Mapping[str, DeviceBytes],
        label: str,
        extra: Mapping[str, str],
        series_prefix: str,
    ) -> tuple[Sample, ...]:
        if not found:
            return ()
        out: list[Sample] = []
        append = out.append
        for device in sorted(found) if len(found) > 1 else found:
            counts = found[device]
            labels = {label: device, **extra}
            series = series_prefix + device
            for meter, ops_meter, ops_unit, half in meters:
                value = float(counts.read if half == "read" else counts.write)
                append(Sample(meter, name, value, "B", CUMULATIVE, t, instance, host, labels))
                per_second = rate(name, meter, value, t, series=series)
                if per_second is not None:
                    append(
                        Sample(
                            meter + ".rate",
                            name,
                            per_second,
                            "B/s",
                            GAUGE,
                            t,
                            instance,
                            host,
                            labels,
                        )
                    )
                ops = counts.read_ops if half == "read" else counts.write_ops
                if ops is not None:
                    append(
                        Sample(
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
        return tuple(out)

    return InstanceSamples(
        {
            Hook.CPU: cpu,
            Hook.RAM: ram,
            Hook.DISK: devices(_DISK_METERS, c.disks, "device", {}, "disk:"),
            Hook.VOLUME: devices(_DISK_METERS, c.volumes, "device", {"volume": "true"}, "vol:"),
            Hook.BANDWIDTH: devices(_NET_METERS, c.interfaces, "interface", {}, "net:"),
        }
    )


def host_samples(c: HostCounters, rates: RateTable) -> list[Sample]:
    """Samples of the host itself; its CPU percent needs a previous observation."""
    _check_host(c)
    name, t = c.host, c.time

    def sample(meter: str, value: float, unit: str) -> Sample:
        return Sample(meter, name, value, unit, GAUGE, t, EntityKind.HOST, name)

    out: list[Sample] = []
    busy = rates.rate(name, "compute.node.cpu.time", float(c.cpu_time_ns), t)
    if busy is not None:
        out.append(sample("compute.node.cpu.percent", cpu_util(busy, c.cores), "%"))
    free = min(max(c.memory_free_mb, 0.0), float(c.memory_mb))
    out.append(sample("memory.free", free, "MB"))
    out.append(sample("memory.used", c.memory_mb - free, "MB"))
    out.append(sample("memory.free.percent", 100.0 * free / c.memory_mb, "%"))
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
