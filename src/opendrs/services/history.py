"""Round-robin history on the server side: every sample that arrives is kept in
its host's round-robin file, one write per host per poll round, so graphs and
the decision engine can read days of history. `handle` may run on a bus's own
thread while `flush` runs on another: the pending samples are swapped under a lock."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict

from opendrs.bus import codec, subjects
from opendrs.domain.event import Event
from opendrs.domain.ports import Bus, Subscription
from opendrs.domain.sample import Sample
from opendrs.store.rrd.collection import HostArchives, HostRecorder

log = logging.getLogger(__name__)


class HistoryRecorder:
    def __init__(self, bus: Bus, archives: HostArchives) -> None:
        self._bus = bus
        self._archives = archives
        self._subscription: Subscription | None = None
        self._pending: dict[str, list[Sample]] = defaultdict(list)
        self._lock = threading.Lock()
        self.failures = 0

    def start(self) -> None:
        self._subscription = self._bus.subscribe(f"{subjects.SAMPLES}.>", self.handle, "history")

    def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        self.flush()

    def handle(self, event: Event) -> None:
        samples = codec.samples_of(event)
        with self._lock:
            for sample in samples:
                self._pending[sample.host or sample.entity].append(sample)

    def flush(self) -> None:
        """One update per host with everything since the last flush; a host whose
        file cannot be written is logged and counted, the others still are."""
        with self._lock:
            pending, self._pending = self._pending, defaultdict(list)
        for host, samples in pending.items():
            try:
                HostRecorder(self._archives, host).record(max(s.time for s in samples), samples)
            except Exception:
                self.failures += 1
                log.exception("history of %s not written", host)
