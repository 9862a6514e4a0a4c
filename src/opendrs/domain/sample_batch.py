"""A batch of samples in the two forms hot paths use: columns (a fixed layout of
meters, entities, units... and the values and times as arrays) and rows (tuples
in the order of Sample's fields), each made from the other only when something
asks, and `Sample` objects made only when something asks for them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import compress
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from opendrs.domain.sample import EntityKind, Sample, SampleRow, SampleType

_Floats = npt.NDArray[np.float64]


class ColumnLayout:
    """Every column of a poll's samples but value and time, in row order. The agent
    hands out the very same object from poll to poll while the host's series stay
    the same, so a plugin may keep what it derives from a layout until another
    object comes (an equal one included: identity is the cheap test)."""

    __slots__ = ("entities", "hosts", "kinds", "labels", "meters", "types", "units")

    def __init__(
        self,
        meters: list[str],
        entities: list[str],
        units: list[str],
        types: list[SampleType],
        kinds: list[EntityKind],
        hosts: list[str],
        labels: list[Mapping[str, str]],
    ) -> None:
        self.meters = meters
        self.entities = entities
        self.units = units
        self.types = types
        self.kinds = kinds
        self.hosts = hosts
        self.labels = labels

    @classmethod
    def of_rows(cls, rows: Sequence[SampleRow]) -> ColumnLayout:
        if not rows:
            return cls([], [], [], [], [], [], [])
        columns = [list(column) for column in zip(*rows, strict=True)]
        meters, entities, _, units, types, _, kinds, hosts, labels = columns
        return cls(meters, entities, units, types, kinds, hosts, labels)

    def __len__(self) -> int:
        return len(self.meters)

    def columns(self) -> tuple[list[Any], ...]:
        """The seven columns, in Sample's field order without value and time."""
        return (
            self.meters,
            self.entities,
            self.units,
            self.types,
            self.kinds,
            self.hosts,
            self.labels,
        )

    def joined(self, other: ColumnLayout) -> ColumnLayout:
        """This layout's rows, then `other`'s."""
        return ColumnLayout(*(a + b for a, b in zip(self.columns(), other.columns(), strict=True)))

    def compressed(self, keep: Sequence[bool]) -> ColumnLayout:
        """The rows where `keep` is true."""
        return ColumnLayout(*(list(compress(column, keep)) for column in self.columns()))

    def same_series(self, other: ColumnLayout) -> bool:
        """True when both lay out the same series in the same order."""
        return self is other or self.columns() == other.columns()


class PollColumns:
    """One poll's samples as columns: a layout, and the values and times of its rows."""

    __slots__ = ("_rows", "layout", "times", "values")

    def __init__(self, layout: ColumnLayout, values: _Floats, times: _Floats) -> None:
        if len(values) != len(layout) or len(times) != len(layout):
            raise ValueError(f"{len(values)} values and {len(times)} times for {len(layout)} rows")
        self.layout = layout
        self.values = values
        self.times = times
        self._rows: list[SampleRow] | None = None

    @classmethod
    def of_rows(cls, rows: Sequence[SampleRow]) -> PollColumns:
        made = cls(
            ColumnLayout.of_rows(rows),
            np.fromiter((row[2] for row in rows), dtype=float, count=len(rows)),
            np.fromiter((row[5] for row in rows), dtype=float, count=len(rows)),
        )
        made._rows = rows if isinstance(rows, list) else list(rows)
        return made

    def __len__(self) -> int:
        return len(self.values)

    def rows(self) -> list[SampleRow]:
        """The rows, made once."""
        made = self._rows
        if made is None:
            layout = self.layout
            made = self._rows = list(
                zip(
                    layout.meters,
                    layout.entities,
                    self.values.tolist(),
                    layout.units,
                    layout.types,
                    self.times.tolist(),
                    layout.kinds,
                    layout.hosts,
                    layout.labels,
                    strict=True,
                )
            )
        return made

    def joined(self, other: PollColumns, layout: ColumnLayout | None = None) -> PollColumns:
        """This poll's rows, then `other`'s; `layout`, when given, is their joined
        layout (kept by the caller from an earlier poll)."""
        return PollColumns(
            layout or self.layout.joined(other.layout),
            np.concatenate((self.values, other.values)),
            np.concatenate((self.times, other.times)),
        )


class SampleBatch(Sequence[Sample]):
    """A read-only sequence of Samples backed by rows or columns (each made from
    the other on first use); equal to any sequence holding equal samples."""

    __slots__ = ("_columns", "_rows", "_samples")

    def __init__(self, rows: Sequence[SampleRow] | None = None) -> None:
        self._rows = rows
        self._columns: PollColumns | None = None
        self._samples: tuple[Sample, ...] | None = None

    @classmethod
    def of_columns(cls, columns: PollColumns) -> SampleBatch:
        made = cls()
        made._columns = columns
        return made

    @property
    def rows(self) -> Sequence[SampleRow]:
        found = self._rows
        if found is None:
            found = self._rows = self.columns.rows()
        return found

    @property
    def columns(self) -> PollColumns:
        found = self._columns
        if found is None:
            found = self._columns = PollColumns.of_rows(self._rows or [])
        return found

    def _made(self) -> tuple[Sample, ...]:
        made = self._samples
        if made is None:
            made = self._samples = tuple([Sample(*row) for row in self.rows])
        return made

    def __len__(self) -> int:
        return len(self._rows) if self._rows is not None else len(self.columns)

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
        return f"SampleBatch({len(self)} samples)"


def rows_of(samples: Sequence[Sample] | Any) -> Sequence[SampleRow]:
    """The rows of `samples`: from a SampleBatch as it has them, else built."""
    if isinstance(samples, SampleBatch):
        return samples.rows
    return [
        (s.meter, s.entity, s.value, s.unit, s.type, s.time, s.kind, s.host, s.labels)
        for s in samples
    ]


def columns_of(samples: Sequence[Sample] | Any) -> PollColumns:
    """The columns of `samples`: from a SampleBatch as it has them, else built."""
    if isinstance(samples, SampleBatch):
        return samples.columns
    return PollColumns.of_rows(rows_of(samples))
