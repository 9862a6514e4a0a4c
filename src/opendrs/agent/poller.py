"""The agent of one host: each poll reads the host's and its instances' raw
counters, derives Ceilometer samples and rates, and runs them through the
plugin pipeline. A failing read costs only what it was reading."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence

from opendrs.agent.batch import ColumnLayout, PollBatch, PollColumns, SampleBatch, SampleRow
from opendrs.agent.meters import host_rows, instance_rows
from opendrs.agent.pipeline import InstanceEntry, PluginPipeline
from opendrs.agent.plugin import PollResult
from opendrs.agent.rates import RateTable
from opendrs.agent.sweep import PollSweep
from opendrs.domain.clock import Clock
from opendrs.domain.counters import HostCounters, InstanceCounters
from opendrs.domain.ports import StatsSource

log = logging.getLogger(__name__)


class Agent:
    """Polls `host` through `stats` and feeds `pipeline`."""

    def __init__(
        self,
        host: str,
        stats: StatsSource,
        pipeline: PluginPipeline,
        clock: Clock,
        *,
        rates: RateTable | None = None,
    ) -> None:
        self.host = host
        self._stats = stats
        self.pipeline = pipeline
        self._clock = clock
        self.rates = rates if rates is not None else RateTable()
        self._sweep = PollSweep()
        # the instances' layout, the host rows' series, and the two joined
        self._joined: tuple[ColumnLayout, list[tuple[object, ...]], ColumnLayout] | None = None
        self.polls = 0
        self.failures: Counter[str] = Counter()
        # held for a whole poll: a reload swaps the pipeline between two polls
        self.lock = threading.RLock()

    def poll_once(self) -> PollResult:
        """One poll: samples of every instance, then of the host, through every plugin."""
        with self.lock:
            return self._poll()

    def _poll(self) -> PollResult:
        run = self.pipeline.begin(self.host, self._clock.now())
        errors: list[str] = []
        entries: Sequence[InstanceEntry] = []
        by_name: dict[str, InstanceCounters] = {}
        columns: PollColumns | None = None

        try:
            instances = self._stats.instance_counters(self.host)
        except Exception as exc:
            instances = None
            self._failed("instance_counters", f"instance list of {self.host}: {exc}", errors)
        swept = self._sweep.columns(instances, self.rates, self.host) if instances else None
        if swept is not None:
            columns, entries, changed = swept
            by_name = {c.instance: c for c in instances or ()}
            if changed:
                self._forget_gone(set(by_name))
        elif instances:
            columns, entries, by_name = self._one_by_one(instances, errors)
        elif instances is not None:  # none on the host now
            self._sweep.forget()
            self._forget_gone(set())
        self._driver_errors(errors)

        host_entry: tuple[HostCounters, list[SampleRow]] | None = None
        host: HostCounters | None = None
        try:
            host = self._stats.host_counters(self.host)
            found_host = host_rows(host, self.rates)
        except Exception as exc:
            host = None
            self._failed("host_counters", f"host {self.host}: {exc}", errors)
        else:
            host_entry = (host, found_host)
            columns = self._with_host(columns, found_host)

        batch = SampleBatch.of_columns(columns) if columns is not None else SampleBatch([])
        run.deliver(entries, host_entry, PollBatch(batch, by_name, host))
        self.polls += 1
        return run.finish(batch, errors)

    def _one_by_one(
        self, instances: Sequence[InstanceCounters], errors: list[str]
    ) -> tuple[PollColumns, list[InstanceEntry], dict[str, InstanceCounters]]:
        """The poll instance by instance (some counters are invalid, or a name
        came twice): a bad instance costs only its own samples, and is named."""
        rows: list[SampleRow] = []
        entries: list[InstanceEntry] = []
        by_name: dict[str, InstanceCounters] = {}
        for counters in instances:
            try:
                found = instance_rows(counters, self.rates, self.host)
            except Exception as exc:
                self._failed("instance", f"instance {counters.instance}: {exc}", errors)
                continue
            entries.append((counters, found))
            by_name[counters.instance] = counters
            for group in found.values():
                rows.extend(group)
        self._forget_gone({c.instance for c in instances})
        return PollColumns.of_rows(rows), entries, by_name

    def _with_host(self, columns: PollColumns | None, rows: list[SampleRow]) -> PollColumns:
        """The instances' samples, then the host's, their joined layout kept from
        poll to poll while neither part changes."""
        host = PollColumns.of_rows(rows)
        if columns is None:
            return host
        shape: list[tuple[object, ...]] = [
            (row[0], row[1], row[3], row[4], row[6], row[7], row[8]) for row in rows
        ]
        kept = self._joined
        if kept is not None and kept[0] is columns.layout and kept[1] == shape:
            return columns.joined(host, kept[2])
        joined = columns.joined(host)
        self._joined = (columns.layout, shape, joined.layout)
        return joined

    def run(self, interval: float, wait: Callable[[float], bool]) -> None:
        """Poll, then `wait(interval)`, until it returns True (e.g. threading.Event.wait)."""
        if interval <= 0:
            raise ValueError(f"poll interval must be positive, got {interval}")
        while True:
            try:
                self.poll_once()
            except Exception:
                self.failures["poll"] += 1
                log.exception("poll of %s failed; carrying on", self.host)
            if wait(interval):
                return

    def _failed(self, what: str, message: str, errors: list[str]) -> None:
        self.failures[what] += 1
        errors.append(message)
        log.warning("agent %s: %s", self.host, message)

    def _driver_errors(self, errors: list[str]) -> None:
        # A driver that skips what it could not read (a domain that vanished
        # mid-poll) may say so through an optional `drain_errors()`.
        drain = getattr(self._stats, "drain_errors", None)
        if not callable(drain):
            return
        try:
            found = drain()
        except Exception:
            log.exception("agent %s: the driver's drain_errors failed", self.host)
            return
        for message in found:
            self.failures["driver"] += 1
            errors.append(str(message))

    def _forget_gone(self, present: set[str]) -> None:
        for entity in self.rates.entities() - present - {self.host}:
            self.rates.forget(entity)
