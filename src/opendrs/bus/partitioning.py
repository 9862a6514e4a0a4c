"""Stable routing of entities to partitions, so one entity always reaches the
same CEP worker (windows need whole streams)."""

from __future__ import annotations

import zlib


def partition_of(entity: str, partitions: int) -> int:
    """CRC-32 of the entity name modulo the partition count; stable across processes."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    return zlib.crc32(entity.encode("utf-8")) % partitions
