"""Domain events: what happened, to be carried as CloudEvents on the bus."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Event:
    """A CloudEvents-shaped fact: `type` like `opendrs.audit.requested`, `subject` the entity."""

    type: str
    source: str
    time: float
    data: Mapping[str, Any] = field(default_factory=dict)
    subject: str = ""
    id: str = field(default_factory=new_id)
