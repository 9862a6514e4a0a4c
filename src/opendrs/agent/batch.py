"""A poll's samples as plain rows (tuples in the order of Sample's fields), with
the `Sample` objects made only when something asks for them: building one costs
ten times a tuple, and the built-in plugins never need them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from opendrs.bus.codec import SampleRow
from opendrs.domain.counters import HostCounters, InstanceCounters
from opendrs.domain.sample import Sample

__all__ = ["PollBatch", "SampleBatch", "SampleRow", "rows_of"]


class SampleBatch(Sequence[Sample]):
    """A read-only sequence of Samples backed by `rows`; equal to any sequence
    holding equal samples (a tuple of them included)."""

    __slots__ = ("_samples", "rows")

    def __init__(self, rows: Sequence[SampleRow]) -> None:
        self.rows = rows
        self._samples: tuple[Sample, ...] | None = None

    def _made(self) -> tuple[Sample, ...]:
        made = self._samples
        if made is None:
            made = self._samples = tuple([Sample(*row) for row in self.rows])
        return made

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Sample, ...]: ...

    def __getitem__(self, index: int | slice) -> Sample | tuple[Sample, ...]:
        return self._made()[index]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self._made())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SampleBatch):
            return list(self.rows) == list(other.rows)
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return self._made() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._made())

    def __repr__(self) -> str:
        return f"SampleBatch({len(self.rows)} samples)"


def rows_of(samples: Sequence[Sample] | Any) -> Sequence[SampleRow]:
    """The rows of `samples`: for free from a SampleBatch, else built from the Samples."""
    if isinstance(samples, SampleBatch):
        return samples.rows
    return [
        (s.meter, s.entity, s.value, s.unit, s.type, s.time, s.kind, s.host, s.labels)
        for s in samples
    ]


@dataclass(frozen=True, slots=True)
class PollBatch:
    """What the batch hook (`on_batch`) receives: every sample row of the poll in
    order (each instance's, then the host's), and the raw counters they came from."""

    rows: Sequence[SampleRow]
    instances: Mapping[str, InstanceCounters] = field(default_factory=dict)
    host: HostCounters | None = None
