"""What the agent's batch hook receives: a poll's samples (rows or columns, see
`opendrs.domain.sample_batch`) with the raw counters they came from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from opendrs.domain.counters import HostCounters, InstanceCounters
from opendrs.domain.sample import SampleRow
from opendrs.domain.sample_batch import (
    ColumnLayout,
    PollColumns,
    SampleBatch,
    columns_of,
    rows_of,
)

__all__ = [
    "ColumnLayout",
    "PollBatch",
    "PollColumns",
    "SampleBatch",
    "SampleRow",
    "columns_of",
    "rows_of",
]


@dataclass(frozen=True, slots=True)
class PollBatch:
    """What the batch hook (`on_batch`) receives: every sample of the poll in
    order (each instance's, then the host's) as rows or as columns, and the raw
    counters they came from."""

    samples: SampleBatch
    instances: Mapping[str, InstanceCounters] = field(default_factory=dict)
    host: HostCounters | None = None

    @property
    def rows(self) -> Sequence[SampleRow]:
        return self.samples.rows

    @property
    def columns(self) -> PollColumns:
        return self.samples.columns
