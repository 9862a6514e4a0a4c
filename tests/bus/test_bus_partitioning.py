"""Partitioning: an entity always lands on the same partition, in range, in every
process; partition ranges parse as operators write them."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opendrs.bus.partitioning import (
    PartitionRange,
    partition_group,
    partition_of,
    sample_subject,
)
from opendrs.domain.errors import InvalidInput

entities = st.text(min_size=0, max_size=40)
counts = st.integers(min_value=1, max_value=4096)


@given(entities, counts)
def test_a_partition_is_in_range_and_stable(entity: str, partitions: int) -> None:
    first = partition_of(entity, partitions)
    assert 0 <= first < partitions
    assert partition_of(entity, partitions) == first
    assert sample_subject(entity, partitions) == f"samples.{first}"


def test_partitions_are_the_same_in_another_process() -> None:
    # hash() is salted per process; the partition must not be
    names = [f"vm-{i}" for i in range(50)]
    here = [partition_of(n, 8) for n in names]
    code = (
        "from opendrs.bus.partitioning import partition_of;"
        f"print([partition_of(n, 8) for n in {names!r}])"
    )
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert there.strip() == str(here)
    assert partition_of("vm-1", 8) == 2 and partition_of("host-a", 8) == 7  # pinned CRC-32


def test_entities_spread_over_the_partitions() -> None:
    seen = [partition_of(f"instance-{i:05d}", 8) for i in range(8000)]
    per_partition = [seen.count(p) for p in range(8)]
    assert min(per_partition) > 800  # 1000 each when even; CRC-32 is close


def test_no_partitions_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        partition_of("vm", 0)


@given(st.integers(0, 100), st.integers(0, 100))
def test_a_range_holds_its_partitions(first: int, extra: int) -> None:
    span = PartitionRange(first, first + extra)
    assert list(span) == list(range(first, first + extra + 1))
    assert len(span) == extra + 1
    assert PartitionRange.parse(str(span)) == span
    assert all(p in span for p in span) and first + extra + 1 not in span
    assert span.subjects() == [f"samples.{p}" for p in span]


def test_ranges_parse_as_written() -> None:
    assert PartitionRange.parse("0-3") == PartitionRange(0, 3)
    assert PartitionRange.parse(" 5 ") == PartitionRange(5, 5)
    assert PartitionRange.everything(8) == PartitionRange(0, 7)
    assert partition_group("cep", 3) == "cep-p3"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a-b", "range like 0-3"),
        ("3-1", "first <= last"),
        ("-1", "range like"),
        ("0-8", "there are 8"),
    ],
)
def test_bad_ranges_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        PartitionRange.parse(text, partitions=8)
    assert words in str(caught.value)
    assert caught.value.source == "partitions"
