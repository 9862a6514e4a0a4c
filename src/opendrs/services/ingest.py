"""Sample ingest: the latest value of every gauge and rate becomes part of the
cluster model, so the decision engine sees what the agents measured. Values are
gathered per message and written in one transaction per `flush` (once per poll
round), since one poll arrives as many small partitioned messages. A networked
bus calls `handle` on its own thread while `flush` runs on another: the pending
values are swapped under a lock, and the write happens outside it."""

from __future__ import annotations

import logging
import threading

from opendrs.bus import codec, subjects
from opendrs.domain.event import Event
from opendrs.domain.ports import Bus, ClusterRepository, Subscription
from opendrs.domain.sample import SampleType

log = logging.getLogger(__name__)


class SampleIngest:
    def __init__(self, bus: Bus, cluster: ClusterRepository) -> None:
        self._bus = bus
        self._cluster = cluster
        self._subscription: Subscription | None = None
        self._pending: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()
        self.samples = 0
        self.flush_failures = 0

    def start(self) -> None:
        self._subscription = self._bus.subscribe(f"{subjects.SAMPLES}.>", self.handle, "ingest")

    def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        self.flush()

    def handle(self, event: Event) -> None:
        # column by column: a poll of a big host is thousands of samples, and the
        # model needs three fields of each, no Sample object
        found = codec.sample_columns(event)
        with self._lock:
            self.samples += found.count
            pending = self._pending
            for kind, entity, meter, value in zip(
                found.type, found.entity, found.meter, found.value, strict=True
            ):
                if kind != SampleType.CUMULATIVE:  # the model keeps levels and rates
                    pending.setdefault(entity, {})[meter] = value

    def flush(self) -> None:
        """Write what arrived since the last flush; on failure keep it for the next."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            self._cluster.update_many_metrics(pending)
        except Exception:
            self.flush_failures += 1
            log.exception("writing %d entities' metrics failed; will retry", len(pending))
            with self._lock:  # kept for the next flush, values that came since winning
                for entity, metrics in self._pending.items():
                    pending.setdefault(entity, {}).update(metrics)
                self._pending = pending
