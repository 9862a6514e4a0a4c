"""The history plugin: each poll's gauges into the host's own round-robin
history. The store is a port (`HostHistory`) that the round-robin engine
(store/rrd) implements; the plugin only chooses what to keep and hands it over."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from opendrs.agent.plugin import PollResult, QuietHooks
from opendrs.domain.sample import Sample, SampleType
from opendrs.domain.sample_batch import ColumnLayout, PollColumns, SampleBatch, columns_of

_GAUGE = SampleType.GAUGE


class HostHistory(Protocol):
    """What the history plugin writes to: one call per poll, every sample of that
    poll with the same `time` (the poll's). The samples come as a SampleBatch:
    a store may read its `.columns` (or `.rows`) and never make a Sample."""

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
        # the poll layout last seen, the rows kept of it, and their layout
        self._kept: tuple[ColumnLayout, np.ndarray, ColumnLayout] | None = None

    def on_poll_done(self, result: PollResult) -> None:
        columns = columns_of(result.samples)
        kept = self._kept
        if kept is None or kept[0] is not columns.layout:
            kept = self._kept = self._choose(columns.layout)
        _, rows, layout = kept
        if len(rows):
            chosen = PollColumns(layout, columns.values[rows], columns.times[rows])
            self._store.record(result.time, SampleBatch.of_columns(chosen))
            self.recorded += len(rows)

    def _choose(self, layout: ColumnLayout) -> tuple[ColumnLayout, np.ndarray, ColumnLayout]:
        meters = self._meters
        if meters:
            keep = [meter in meters for meter in layout.meters]
        else:
            keep = [kind is _GAUGE for kind in layout.types]
        return layout, np.flatnonzero(keep), layout.compressed(keep)
