"""One helper for every state machine in the domain: a table of allowed moves."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from opendrs.domain.errors import InvalidTransition

S = TypeVar("S", bound=StrEnum)


def check_transition(kind: str, table: Mapping[S, frozenset[S]], current: S, wanted: S) -> S:
    """Return `wanted` if the table allows `current -> wanted`, else raise InvalidTransition."""
    if wanted not in table.get(current, frozenset()):
        raise InvalidTransition(kind, current.value, wanted.value)
    return wanted
