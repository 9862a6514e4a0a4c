"""One round-robin file per host in a directory: the agent or ingest writes all
series of a host in one call (new series become columns, gone ones are
retired), and the decision engine reads any series of any host as one matrix
on a common time grid."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from opendrs.domain.clock import Clock, WallClock
from opendrs.domain.errors import InvalidInput, NotFound, StoreError
from opendrs.domain.sample import Sample, SampleType
from opendrs.domain.sample_batch import ColumnLayout, PollColumns, SampleBatch, columns_of
from opendrs.store.rrd.archive import RoundRobinFile
from opendrs.store.rrd.definition import (
    DEFAULT_STEP,
    Archive,
    Consolidation,
    DataSource,
    SourceType,
    default_archives,
)
from opendrs.store.rrd.fetch import parse_cf, plan_fetch

_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
SUFFIX = ".odrs"


def split_series(name: str) -> tuple[str, str, str]:
    """`entity/meter[/device]` (the agent's series keys) → (entity, meter, device);
    a name without '/' is a meter alone."""
    parts = name.split("/", 2)
    if len(parts) == 1:
        return "", name, ""
    return parts[0], parts[1], parts[2] if len(parts) > 2 else ""


def default_source(name: str, heartbeat: int = 2 * DEFAULT_STEP) -> DataSource:
    """How a series is stored when nobody says otherwise, from its meter:
    percentages are bounded gauges, cumulative bytes/ns are counters (DERIVE,
    min 0: a reset is unknown, not a spike), everything else an unbounded gauge."""
    meter = split_series(name)[1]
    if meter.endswith(("util", "percent")) or meter == "cpu_util":
        return DataSource(name, SourceType.GAUGE, heartbeat, 0.0, 100.0)
    if meter.endswith((".bytes", ".requests", ".packets")) or meter == "cpu":
        return DataSource(name, SourceType.DERIVE, heartbeat, 0.0, math.nan)
    return DataSource(name, SourceType.GAUGE, heartbeat)


@dataclass(frozen=True, slots=True)
class SeriesMatrix:
    """Series of several hosts on one time grid: values[row, series]."""

    start: int
    end: int
    step: int
    keys: tuple[tuple[str, str], ...]  # (host, column)
    values: npt.NDArray[np.float64]

    @property
    def timestamps(self) -> npt.NDArray[np.int64]:
        return self.start + self.step * np.arange(1, len(self.values) + 1, dtype=np.int64)


class HostArchives:
    """The directory of host files, all with the same step and archives."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        step: int = DEFAULT_STEP,
        archives: Sequence[Archive] | None = None,
        capacity: int = 64,
        source_for: Callable[[str], DataSource] = default_source,
        clock: Clock | None = None,
    ) -> None:
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.step = step
        self.archives = tuple(archives) if archives is not None else default_archives(step)
        self.capacity = capacity
        self.source_for = source_for
        self._clock = clock or WallClock()
        self._files: dict[str, RoundRobinFile] = {}

    def path(self, host: str) -> str:
        if not _HOST.match(host):
            raise InvalidInput(f"host name {host!r} cannot name a file", field="host")
        return os.path.join(self.directory, host + SUFFIX)

    def hosts(self) -> list[str]:
        return sorted(
            name[: -len(SUFFIX)] for name in os.listdir(self.directory) if name.endswith(SUFFIX)
        )

    def file(self, host: str, *, create_at: float | None = None) -> RoundRobinFile:
        """The open file of a host, created (starting just before `create_at`)
        if it does not exist yet."""
        handle = self._files.get(host)
        if handle is not None:
            return handle
        path = self.path(host)
        if os.path.exists(path):
            handle = RoundRobinFile.open(path, clock=self._clock)
        elif create_at is None:
            raise NotFound("host history", host)
        else:
            handle = RoundRobinFile.create(
                path,
                step=self.step,
                archives=self.archives,
                start=math.floor(create_at) - 1,
                capacity=self.capacity,
                clock=self._clock,
            )
        self._files[host] = handle
        return handle

    def update(
        self,
        host: str,
        when: float,
        values: Mapping[str, float | int | None],
        *,
        retire_missing: bool = False,
        sources: Mapping[str, DataSource] | None = None,
    ) -> None:
        """All series of a host at one time; series never seen become columns
        (from `sources`, else `source_for`), and with `retire_missing` the
        columns not in `values` are retired (their VM is gone)."""
        handle = self.file(host, create_at=when)
        known = set(handle.columns)
        new = [name for name in values if name not in known]
        if new:
            given = sources or {}
            handle.add_columns([given.get(name) or self.source_for(name) for name in new])
        if retire_missing:
            gone = [name for name in known if name not in values]
            if gone:
                handle.retire_columns(gone)
        handle.update(when, dict(values))

    def read(
        self,
        cf: str | Consolidation,
        start: int,
        end: int,
        *,
        series: Iterable[tuple[str, str]] | None = None,
        hosts: Iterable[str] | None = None,
        resolution: int = 1,
    ) -> SeriesMatrix:
        """Series of many hosts at once: `series` as (host, column) pairs, or
        every column of `hosts` (default: all hosts). One archive and grid,
        chosen by rrdtool's fetch rules from the most recently updated host."""
        consolidation = cf if isinstance(cf, Consolidation) else parse_cf(cf)
        wanted: dict[str, list[str] | None] = {}
        if series is not None:
            for host, column in series:
                columns = wanted.setdefault(host, [])
                if columns is not None:
                    columns.append(column)
        else:
            for host in hosts if hosts is not None else self.hosts():
                wanted[host] = None
        handles = {host: self.file(host) for host in wanted}
        last_up = max((int(h.last_update) for h in handles.values()), default=int(start))
        plan = plan_fetch(
            self.archives, self.step, last_up, consolidation, int(start), int(end), resolution
        )
        keys: list[tuple[str, str]] = []
        parts: list[npt.NDArray[np.float64]] = []
        for host, columns in wanted.items():
            fetched = handles[host].read_plan(plan, columns)
            keys.extend((host, name) for name in fetched.names)
            parts.append(fetched.values)
        values = np.hstack(parts) if parts else np.zeros((plan.rows, 0))
        return SeriesMatrix(plan.start, plan.end, plan.step, tuple(keys), values)

    def history(
        self,
        name: str,
        cf: str | Consolidation,
        start: int,
        end: int,
        resolution: int = 1,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """One series wherever it lived (an instance that migrated has its
        history in several host files, retired where it left): merged on one
        grid, the host it lives on now first."""
        consolidation = cf if isinstance(cf, Consolidation) else parse_cf(cf)
        holders: list[tuple[int, RoundRobinFile]] = []
        for host in self.hosts():
            handle = self.file(host)
            if name in handle.columns:
                holders.append((0, handle))
            elif name in handle.retired:
                holders.append((1, handle))
        if not holders:
            raise NotFound("series", name)
        holders.sort(key=lambda item: (item[0], -item[1].last_update))
        last_up = max(int(h.last_update) for _, h in holders)
        plan = plan_fetch(
            self.archives, self.step, last_up, consolidation, int(start), int(end), resolution
        )
        merged: npt.NDArray[np.float64] | None = None
        for _, handle in holders:
            values = handle.read_plan(plan, [name]).values[:, 0]
            merged = values if merged is None else np.where(np.isnan(merged), values, merged)
        assert merged is not None
        stamps = plan.start + plan.step * np.arange(1, plan.rows + 1, dtype=np.int64)
        return stamps, merged

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()

    def __enter__(self) -> HostArchives:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sample_series(sample: Sample) -> str:
    """The series a sample belongs to: `entity/meter[/device or interface]`
    (the agent's history plugin names series the same way)."""
    labels = sample.labels
    device = (labels.get("device") or labels.get("interface")) if labels else None
    base = f"{sample.entity}/{sample.meter}"
    return f"{base}/{device}" if device else base


def sample_source(sample: Sample, name: str, heartbeat: int = 2 * DEFAULT_STEP) -> DataSource:
    """How a new series is stored, from its first sample: gauges as GAUGE
    (0..100 for %), cumulative values as DERIVE min 0, deltas as ABSOLUTE."""
    if sample.type is SampleType.CUMULATIVE:
        return DataSource(name, SourceType.DERIVE, heartbeat, 0.0, math.nan)
    if sample.type is SampleType.DELTA:
        return DataSource(name, SourceType.ABSOLUTE, heartbeat, 0.0, math.nan)
    if sample.unit == "%":
        return DataSource(name, SourceType.GAUGE, heartbeat, 0.0, 100.0)
    return DataSource(name, SourceType.GAUGE, heartbeat)


class HostRecorder:
    """One host's history as the agent's history plugin writes it
    (`record(time, samples)`, the HostHistory port)."""

    def __init__(self, archives: HostArchives, host: str) -> None:
        archives.path(host)  # the host name must be able to name a file
        self.archives = archives
        self.host = host
        # the last layout of samples seen, its series names and their sources
        self._named: tuple[ColumnLayout, list[str], dict[str, DataSource]] | None = None

    def record(self, time: float, samples: Sequence[Sample]) -> None:
        """Every sample of one poll, at the poll's time; new series become
        columns. Raises StoreError when the file cannot be written."""
        columns = columns_of(samples)
        named = self._named
        if named is None or named[0] is not columns.layout:
            named = self._named = self._names(columns)
        _, names, sources = named
        values = dict(zip(names, columns.values.tolist(), strict=True))
        try:
            self.archives.update(self.host, time, values, sources=sources)
        except OSError as error:
            raise StoreError(f"history of {self.host}: {error}") from None

    def _names(self, columns: PollColumns) -> tuple[ColumnLayout, list[str], dict[str, DataSource]]:
        heartbeat = 2 * self.archives.step
        names: list[str] = []
        sources: dict[str, DataSource] = {}
        for sample in SampleBatch.of_columns(columns):
            name = sample_series(sample)
            names.append(name)
            sources[name] = sample_source(sample, name, heartbeat)
        return columns.layout, names, sources
