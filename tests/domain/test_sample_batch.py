"""A batch of samples as rows or columns: each form made from the other gives
back the very same samples, and layouts join, compress and compare by series."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opendrs.domain.sample import EntityKind, Sample, SampleRow, SampleType
from opendrs.domain.sample_batch import (
    ColumnLayout,
    PollColumns,
    SampleBatch,
    columns_of,
    rows_of,
)

_row = st.tuples(
    st.sampled_from(["cpu", "cpu_util", "memory"]),
    st.sampled_from(["a", "b"]),
    st.floats(allow_nan=False),
    st.sampled_from(["%", "ns"]),
    st.sampled_from(list(SampleType)),
    st.floats(0, 1e9),
    st.sampled_from(list(EntityKind)),
    st.just("h"),
    st.sampled_from([{}, {"device": "vda"}]),
)


@given(st.lists(_row, max_size=20))
def test_rows_and_columns_make_each_other(rows: list[SampleRow]) -> None:
    columns = PollColumns.of_rows(rows)
    again = PollColumns(columns.layout, columns.values, columns.times)
    assert again.rows() == rows
    batch = SampleBatch.of_columns(again)
    assert len(batch) == len(rows)
    assert list(batch) == [Sample(*row) for row in rows]
    assert batch == SampleBatch(rows) == tuple(Sample(*row) for row in rows)
    assert rows_of(batch) == rows
    assert columns_of(tuple(batch)).rows() == rows


@given(st.lists(_row, max_size=10), st.lists(_row, max_size=10), st.data())
def test_layouts_join_and_compress_row_by_row(
    first: list[SampleRow], second: list[SampleRow], data: st.DataObject
) -> None:
    a, b = PollColumns.of_rows(first), PollColumns.of_rows(second)
    assert a.joined(b).rows() == first + second
    keep = data.draw(st.lists(st.booleans(), min_size=len(first), max_size=len(first)))
    kept = a.layout.compressed(keep)
    chosen = [row for row, k in zip(first, keep, strict=True) if k]
    assert kept.same_series(ColumnLayout.of_rows(chosen))


def test_same_series_is_identity_or_equal_columns() -> None:
    row: SampleRow = (
        "cpu",
        "a",
        1.0,
        "ns",
        SampleType.CUMULATIVE,
        5.0,
        EntityKind.INSTANCE,
        "h",
        {},
    )
    layout = ColumnLayout.of_rows([row])
    assert layout.same_series(layout)
    assert layout.same_series(ColumnLayout.of_rows([(*row[:2], 9.0, *row[3:])]))  # type: ignore[arg-type]
    assert not layout.same_series(ColumnLayout.of_rows([("cpu_util", *row[1:])]))  # type: ignore[arg-type]


def test_columns_of_another_length_than_their_layout_are_refused() -> None:
    layout = ColumnLayout.of_rows([])
    with pytest.raises(ValueError, match="1 values and 0 times for 0 rows"):
        PollColumns(layout, np.zeros(1), np.zeros(0))
