"""Domain events: what happened, to be carried as CloudEvents on the bus."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# RFC 4122 version 4: the variant bits (10) and the version nibble (4) of a random UUID.
_UUID_KEEP = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_UUID_SET = (0x8000 << 48) | (4 << 76)


def new_id() -> str:
    return uuid.uuid4().hex


def new_ids(count: int) -> list[str]:
    """`count` ids as `new_id` makes them (random version-4 UUIDs, in hex), from one
    read of the system's randomness: a plan of hundreds of moves needs as many."""
    raw = os.urandom(16 * count)
    ids: list[str] = []
    for start in range(0, 16 * count, 16):
        value = int.from_bytes(raw[start : start + 16], "big")
        ids.append(f"{(value & _UUID_KEEP) | _UUID_SET:032x}")
    return ids


@dataclass(frozen=True, slots=True)
class Event:
    """A CloudEvents-shaped fact: `type` like `opendrs.audit.requested`, `subject` the entity."""

    type: str
    source: str
    time: float
    data: Mapping[str, Any] = field(default_factory=dict)
    subject: str = ""
    id: str = field(default_factory=new_id)
