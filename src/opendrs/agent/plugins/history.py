"""The history plugin: each poll's gauges into the host's own round-robin
history. The store is a port (`HostHistory`) that the round-robin engine
(store/rrd) implements; the plugin only chooses what to keep and hands it over."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress
from operator import itemgetter
from typing import Protocol

from opendrs.agent.batch import SampleBatch, rows_of
from opendrs.agent.plugin import PollResult, QuietHooks
from opendrs.domain.sample import Sample, SampleType

_METER = itemgetter(0)
_TYPE = itemgetter(4)
_GAUGE = SampleType.GAUGE


class HostHistory(Protocol):
    """What the history plugin writes to: one call per poll, every sample of that
    poll with the same `time` (the poll's)."""

    def record(self, time: float, samples: Sequence[Sample]) -> None:
        """Add the samples to their series (see `series_key`), creating series
        on first sight. Raises StoreError when it cannot write."""
        ...


def series_key(sample: Sample) -> str:
    """A stable name of a sample's series: `entity/meter[/device or interface]`."""
    labels = sample.labels
    device = (labels.get("device") or labels.get("interface")) if labels else None
    base = f"{sample.entity}/{sample.meter}"
    return f"{base}/{device}" if device else base


class HistoryPlugin(QuietHooks):
    """Keeps the poll's gauges (rates, percentages, sizes), or only `meters` when
    given: cumulative counters are already summarised by their rates."""

    name = "history"

    def __init__(self, store: HostHistory, *, meters: Sequence[str] = ()) -> None:
        self._store = store
        self._meters = frozenset(meters)
        self.recorded = 0

    def on_poll_done(self, result: PollResult) -> None:
        meters = self._meters
        rows = rows_of(result.samples)
        # rows picked out without a Python step per row
        if meters:
            kept = list(compress(rows, map(meters.__contains__, map(_METER, rows))))
        else:
            kept = list(compress(rows, map(_GAUGE.__eq__, map(_TYPE, rows))))
        if kept:
            # a SampleBatch: a store may read its `.rows` and never make a Sample
            self._store.record(result.time, SampleBatch(kept))
            self.recorded += len(kept)
