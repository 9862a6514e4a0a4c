"""The agent of one host: each poll reads the host's and its instances' raw
counters, derives Ceilometer samples and rates, and runs them through the
plugin pipeline. A failing read costs only what it was reading."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable

from opendrs.agent.batch import PollBatch, SampleBatch, SampleRow
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
        rows: list[SampleRow] = []
        errors: list[str] = []
        entries: list[InstanceEntry] = []
        by_name: dict[str, InstanceCounters] = {}

        try:
            instances = self._stats.instance_counters(self.host)
        except Exception as exc:
            instances = None
            self._failed("instance_counters", f"instance list of {self.host}: {exc}", errors)
        extend = rows.extend
        swept = self._sweep.rows(instances, self.rates, self.host) if instances else None
        if swept is not None:
            found_rows, found_entries, changed = swept
            extend(found_rows)
            entries = found_entries  # type: ignore[assignment]
            by_name = {c.instance: c for c in instances or ()}
            if changed:
                self._forget_gone(set(by_name))
        else:
            self._sweep.forget()  # the table moves on without it this poll
        for counters in instances if swept is None and instances else []:
            try:
                found = instance_rows(counters, self.rates, self.host)
            except Exception as exc:
                self._failed("instance", f"instance {counters.instance}: {exc}", errors)
                continue
            entries.append((counters, found))
            by_name[counters.instance] = counters
            for group in found.values():
                extend(group)
        if instances is not None and swept is None:
            self._forget_gone({c.instance for c in instances})
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
            extend(found_host)

        run.deliver(entries, host_entry, PollBatch(rows, by_name, host))
        self.polls += 1
        return run.finish(SampleBatch(rows), errors)

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
