"""What a strategy proposes, before the planner orders it: moves, host state
changes, efficacy indicators and the reasons behind every decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from opendrs.domain.host import HostState


@dataclass(frozen=True, slots=True)
class Move:
    instance: str
    source: str
    destination: str
    live: bool = True
    reason: str = ""


@dataclass(frozen=True, slots=True)
class HostChange:
    """Put `host` into `state` (disable before draining, power off once empty...)."""

    host: str
    state: HostState
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Solution:
    moves: tuple[Move, ...] = ()
    host_changes: tuple[HostChange, ...] = ()
    efficacy: Mapping[str, float] = field(default_factory=dict)
    explanations: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.moves and not self.host_changes
