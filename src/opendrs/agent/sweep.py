"""Every instance's samples of one poll at once: the counters read into one
array, the rates of all of them as one array operation against the previous
poll's, the columns kept while the host's instances and their devices stay the
same. The rows, their order and the rate table come out as
`meters.instance_rows` makes them instance by instance."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import compress
from math import isfinite
from typing import overload

import numpy as np
import numpy.typing as npt

from opendrs.agent.batch import ColumnLayout, PollColumns, SampleRow
from opendrs.agent.meters import (
    _DISK_METERS,
    _NET_METERS,
    _NONE,
    CUMULATIVE,
    GAUGE,
    _labels,
)
from opendrs.agent.plugin import Hook
from opendrs.agent.rates import NS_PER_SECOND, RateTable
from opendrs.domain.counters import DeviceBytes, InstanceCounters
from opendrs.domain.sample import EntityKind, SampleType

_INSTANCE = EntityKind.INSTANCE
_HOOKS = (Hook.CPU, Hook.RAM, Hook.DISK, Hook.VOLUME, Hook.BANDWIDTH)
# One instance's layout: name, no memory use, then its disks, volumes and
# interfaces as (name, no read ops, no write ops), in the order of the rows.
_Devices = tuple[tuple[str, bool, bool], ...]
_Signature = tuple[str, bool, _Devices, _Devices, _Devices]
_Entry = tuple[InstanceCounters, Mapping[Hook, list[SampleRow]]]
_Floats = npt.NDArray[np.float64]
_Indexes = npt.NDArray[np.intp]


class PollSweep:
    """Makes the instance samples of a poll; keeps the layout of the last one,
    and with it the last observation of every counter (written back to the rate
    table when the layout goes: see `settle`)."""

    def __init__(self) -> None:
        self._layout: _Layout | None = None
        self.layouts = 0  # how many times the host's layout changed

    def forget(self) -> None:
        """Drop the layout (its counters written back to the rate table first): the
        next poll reads them again from the table."""
        self.settle()
        self._layout = None

    def settle(self) -> None:
        """Bring the rate table up to date with the counters the layout holds."""
        if self._layout is not None:
            self._layout.settle()

    def columns(
        self, instances: Sequence[InstanceCounters], rates: RateTable, host: str
    ) -> tuple[PollColumns, Sequence[_Entry], bool] | None:
        """The samples of every instance in order, each instance's rows by hook,
        and whether the layout changed since the last poll; None when some
        instance's counters are invalid (instance by instance says which)."""
        inputs: list[float] = []
        times: list[float] = []
        signatures: list[_Signature] = []
        try:
            for c in instances:
                signatures.append(_read(c, inputs))
                times.append(c.time)
        except Exception:
            self.forget()
            return None
        layout = self._layout
        changed = (
            layout is None
            or layout.host != host
            or layout.rates is not rates
            or layout.signatures != signatures
        )
        if changed:
            self.forget()
            if len({s[0] for s in signatures}) != len(signatures):
                return None  # one name twice: only instance by instance gets it right
            layout = self._layout = _Layout(signatures, host, rates)
            self.layouts += 1
        assert layout is not None
        columns, keep = layout.step(np.array(inputs, dtype=float), np.array(times, dtype=float))
        return columns, _Entries(instances, columns, layout.bounds, keep), changed


def _read(c: InstanceCounters, inputs: list[float]) -> _Signature:
    """Check `c`, add its numbers to `inputs`, and return its layout. Raises
    ValueError for counters `meters._check_instance` refuses (instance by
    instance then says what is wrong)."""
    if (
        not c.instance
        or c.vcpus < 1
        or c.cpu_time_ns < 0
        or c.memory_mb < 0
        or not isfinite(c.time)
    ):
        raise ValueError(c.instance)
    used = c.memory_used_mb
    inputs += (
        float(c.cpu_time_ns),
        float(c.vcpus),
        float(c.memory_mb),
        0.0 if used is None else float(used),
    )
    return (
        c.instance,
        used is None,
        _devices(c.disks, inputs),
        _devices(c.volumes, inputs),
        _devices(c.interfaces, inputs),
    )


def _devices(found: Mapping[str, DeviceBytes], inputs: list[float]) -> _Devices:
    if not found:
        return ()
    out = []
    for device in sorted(found) if len(found) > 1 else found:
        counts = found[device]
        if counts.read < 0 or counts.write < 0:
            raise ValueError(device)
        read_ops, write_ops = counts.read_ops, counts.write_ops
        inputs += (
            float(counts.read),
            0.0 if read_ops is None else float(read_ops),
            float(counts.write),
            0.0 if write_ops is None else float(write_ops),
        )
        out.append((device, read_ops is None, write_ops is None))
    return tuple(out)


class _Layout:
    """Where every row of a poll takes its value from, its fixed columns, and
    the last value and time of every counter with a rate."""

    def __init__(self, signatures: list[_Signature], host: str, rates: RateTable) -> None:
        self.signatures = signatures
        self.host = host
        self.rates = rates
        meters: list[str] = []
        units: list[str] = []
        types: list[SampleType] = []
        labels: list[Mapping[str, str]] = []
        owner: list[int] = []  # the instance of each row
        source: list[int] = []  # an input, or a counter for rates (-1: computed)
        rated: list[int] = []  # rows of a rate, and their counter
        rated_counter: list[int] = []
        util: list[int] = []  # cpu_util rows, their counter, the vcpus input
        util_counter: list[int] = []
        util_vcpus: list[int] = []
        counters: list[int] = []  # the input of each counter with a rate
        counter_owner: list[int] = []
        self.keys: list[tuple[str, str, str]] = []
        bounds: list[list[int]] = []

        def row(
            i: int, meter: str, unit: str, kind: SampleType, found: Mapping[str, str], at: int
        ) -> None:
            meters.append(meter)
            units.append(unit)
            types.append(kind)
            labels.append(found)
            owner.append(i)
            source.append(at)

        def counter(i: int, name: str, meter: str, series: str, at: int) -> int:
            self.keys.append((name, meter, series))
            counters.append(at)
            counter_owner.append(i)
            return len(counters) - 1

        base = 0
        for i, (name, no_usage, disks, volumes, interfaces) in enumerate(signatures):
            marks = [len(meters)]
            row(i, "cpu", "ns", CUMULATIVE, _NONE, base)
            cpu = counter(i, name, "cpu", "", base)
            util.append(len(meters))
            util_counter.append(cpu)
            util_vcpus.append(base + 1)
            row(i, "cpu_util", "%", GAUGE, _NONE, -1)
            row(i, "vcpus", "vcpu", GAUGE, _NONE, base + 1)
            marks.append(len(meters))
            row(i, "memory", "MB", GAUGE, _NONE, base + 2)
            if not no_usage:
                row(i, "memory.usage", "MB", GAUGE, _NONE, base + 3)
            at = base + 4
            for found, meter_set, label, volume, prefix in (
                (disks, _DISK_METERS, "device", False, "disk:"),
                (volumes, _DISK_METERS, "device", True, "vol:"),
                (interfaces, _NET_METERS, "interface", False, "net:"),
            ):
                marks.append(len(meters))
                for device, no_read_ops, no_write_ops in found:
                    shared = _labels(label, device, volume)
                    for meter, ops_meter, ops_unit, half in meter_set:
                        value = at if half == "read" else at + 2
                        row(i, meter, "B", CUMULATIVE, shared, value)
                        rated.append(len(meters))
                        rated_counter.append(counter(i, name, meter, prefix + device, value))
                        row(i, meter + ".rate", "B/s", GAUGE, shared, -1)
                        if not (no_read_ops if half == "read" else no_write_ops):
                            row(i, ops_meter, ops_unit, CUMULATIVE, shared, value + 1)
                    at += 4
            marks.append(len(meters))
            bounds.append(marks)
            base = at

        self.size = len(meters)
        self.columns = ColumnLayout(
            meters,
            [signatures[i][0] for i in owner],
            units,
            types,
            [_INSTANCE] * self.size,
            [host] * self.size,
            labels,
        )
        self.owner = np.array(owner, dtype=np.intp)
        taken = [r for r, at in enumerate(source) if at >= 0]
        self.direct: _Indexes = np.array(taken, dtype=np.intp)
        self.direct_source: _Indexes = np.array([source[r] for r in taken], dtype=np.intp)
        self.rated: _Indexes = np.array(rated, dtype=np.intp)
        self.rated_counter: _Indexes = np.array(rated_counter, dtype=np.intp)
        self.util: _Indexes = np.array(util, dtype=np.intp)
        self.util_counter: _Indexes = np.array(util_counter, dtype=np.intp)
        self.util_vcpus: _Indexes = np.array(util_vcpus, dtype=np.intp)
        self.counters: _Indexes = np.array(counters, dtype=np.intp)
        self.counter_owner: _Indexes = np.array(counter_owner, dtype=np.intp)
        self.bounds: _Indexes = np.array(bounds, dtype=np.intp).reshape(len(signatures), 6)
        # the counters' last observations, from the table (a first poll has none)
        last = rates.observations(self.keys)
        self.known = np.array([found is not None for found in last], dtype=bool)
        self.previous: _Floats = np.array([found[0] if found else 0.0 for found in last])
        self.then: _Floats = np.array([found[1] if found else 0.0 for found in last])

    def step(
        self, inputs: _Floats, times: _Floats
    ) -> tuple[PollColumns, npt.NDArray[np.bool_] | None]:
        """This poll's samples (and which rows of the layout they are, None for
        all), with every counter's observation kept."""
        current = inputs[self.counters]
        now = times[self.counter_owner]
        elapsed = now - self.then
        forward = ~(elapsed <= 0)
        fell = current < self.previous
        counted = self.known & forward
        given = counted & ~fell
        self.rates.resets += int((counted & fell).sum())
        with np.errstate(all="ignore"):
            per_second = (current - self.previous) / elapsed
        self.previous, self.then = current, now
        self.known = np.ones(len(current), dtype=bool)

        values = np.empty(self.size)
        values[self.direct] = inputs[self.direct_source]
        values[self.rated] = per_second[self.rated_counter]
        with np.errstate(all="ignore"):
            percent = (
                per_second[self.util_counter] / (inputs[self.util_vcpus] * NS_PER_SECOND) * 100.0
            )
        values[self.util] = np.minimum(np.maximum(percent, 0.0), 100.0)
        row_times = times[self.owner]
        if given.all():
            return PollColumns(self.columns, values, row_times), None
        keep = np.ones(self.size, dtype=bool)
        keep[self.rated] = given[self.rated_counter]
        keep[self.util] = given[self.util_counter]
        layout = self.columns.compressed(keep.tolist())
        return PollColumns(layout, values[keep], row_times[keep]), keep

    def settle(self) -> None:
        """Write the counters' last observations into the rate table."""
        known = self.known
        keys = self.keys if known.all() else list(compress(self.keys, known.tolist()))
        self.rates.record(keys, self.previous[known], self.then[known])


class _Entries(Sequence[tuple[InstanceCounters, Mapping[Hook, list[SampleRow]]]]):
    """Each instance's rows by hook, made only if a plugin takes them that way."""

    def __init__(
        self,
        instances: Sequence[InstanceCounters],
        columns: PollColumns,
        bounds: _Indexes,
        keep: npt.NDArray[np.bool_] | None,
    ) -> None:
        self._instances = instances
        self._columns = columns
        if keep is not None:
            kept = np.concatenate(([0], np.cumsum(keep)))
            bounds = kept[bounds]
        self._bounds = bounds
        self._made: list[tuple[InstanceCounters, Mapping[Hook, list[SampleRow]]]] | None = None

    def _all(self) -> list[tuple[InstanceCounters, Mapping[Hook, list[SampleRow]]]]:
        made = self._made
        if made is None:
            rows = self._columns.rows()
            made = self._made = [
                (c, {hook: rows[marks[h] : marks[h + 1]] for h, hook in enumerate(_HOOKS)})
                for c, marks in zip(self._instances, self._bounds.tolist(), strict=True)
            ]
        return made

    def __len__(self) -> int:
        return len(self._instances)

    @overload
    def __getitem__(
        self, index: int
    ) -> tuple[InstanceCounters, Mapping[Hook, list[SampleRow]]]: ...

    @overload
    def __getitem__(
        self, index: slice
    ) -> list[tuple[InstanceCounters, Mapping[Hook, list[SampleRow]]]]: ...

    def __getitem__(
        self, index: int | slice
    ) -> (
        tuple[InstanceCounters, Mapping[Hook, list[SampleRow]]]
        | list[tuple[InstanceCounters, Mapping[Hook, list[SampleRow]]]]
    ):
        return self._all()[index]

    def __iter__(self) -> Iterator[tuple[InstanceCounters, Mapping[Hook, list[SampleRow]]]]:
        return iter(self._all())
