"""Stable routing of entities to partitions, so one entity always reaches the
same CEP worker (windows need whole streams), and the partition ranges workers own."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from opendrs.bus import subjects
from opendrs.domain.errors import InvalidInput


def partition_of(entity: str, partitions: int) -> int:
    """CRC-32 of the entity name modulo the partition count; stable across processes."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    return zlib.crc32(entity.encode("utf-8")) % partitions


def sample_subject(entity: str, partitions: int) -> str:
    """The subject an entity's samples are published on: `samples.<partition>`."""
    return subjects.samples(partition_of(entity, partitions))


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """Partitions `first`..`last` inclusive, as `opendrs server --partitions 0-3` says."""

    first: int
    last: int

    def __post_init__(self) -> None:
        if self.first < 0 or self.last < self.first:
            raise InvalidInput(
                f"a partition range needs 0 <= first <= last, got {self.first}-{self.last}",
                source="partitions",
            )

    @classmethod
    def parse(cls, text: str, partitions: int | None = None) -> PartitionRange:
        """`"0-3"` or `"5"`; checked against the partition count when it is given."""
        raw = text.strip()
        first_text, dash, last_text = raw.partition("-")
        try:
            first = int(first_text)
            last = int(last_text) if dash else first
        except ValueError:
            raise InvalidInput(
                f"expected a partition or a range like 0-3, got {text!r}", source="partitions"
            ) from None
        found = cls(first, last)
        if partitions is not None:
            found.check_within(partitions)
        return found

    @classmethod
    def everything(cls, partitions: int) -> PartitionRange:
        if partitions < 1:
            raise InvalidInput(f"partitions must be at least 1, got {partitions}")
        return cls(0, partitions - 1)

    def check_within(self, partitions: int) -> None:
        if self.last >= partitions:
            raise InvalidInput(
                f"partition {self.last} does not exist: "
                f"there are {partitions} (0-{partitions - 1})",
                source="partitions",
            )

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first, self.last + 1))

    def __len__(self) -> int:
        return self.last - self.first + 1

    def __contains__(self, partition: object) -> bool:
        return isinstance(partition, int) and self.first <= partition <= self.last

    def subjects(self) -> list[str]:
        """The sample subjects of the range: `samples.0` .. `samples.3`."""
        return [subjects.samples(p) for p in self]

    def __str__(self) -> str:
        return f"{self.first}-{self.last}" if self.last != self.first else str(self.first)


def partition_group(role: str, partition: int) -> str:
    """The durable group that consumes one partition for a role (`cep-p3`): whoever owns
    the partition joins it, so a takeover resumes where the previous owner stopped."""
    return f"{role}-p{partition}"
