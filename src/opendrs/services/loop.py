"""One step of the whole loop in simulated time: the applier advances through
the step in small ticks (migrations finish mid-step), then the inventory is
refreshed and every host's agent polls, which drives ingest, CEP and audits
through the bus."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from opendrs.domain.clock import ManualClock
from opendrs.services.inventory import InventorySync

log = logging.getLogger(__name__)


class Pollable(Protocol):
    host: str

    def poll_once(self) -> object: ...


class Advancing(Protocol):
    def advance_all(self) -> Sequence[object]:
        """Advance every running plan; returns those still running (or just run)."""
        ...


class StepLoop:
    def __init__(
        self,
        *,
        clock: ManualClock,
        inventory: InventorySync,
        agents: Sequence[Pollable],
        applier: Advancing | None,
        step_seconds: float,
        after_poll: Sequence[Callable[[], object]] = (),
        tick_seconds: float = 10.0,
    ) -> None:
        self.clock = clock
        self._inventory = inventory
        self._agents = agents
        self._applier = applier
        self._step = step_seconds
        self._tick = min(tick_seconds, step_seconds)
        self._after_poll = after_poll
        self.steps = 0
        self.agent_failures = 0

    def prime(self) -> None:
        """A first poll so that rates have a baseline before the first step."""
        self._inventory.sync()
        self._poll()

    def step(self) -> None:
        end = self.clock.now() + self._step
        busy = True
        while self.clock.now() < end:
            self.clock.advance(min(self._tick, end - self.clock.now()))
            # Nothing can start a plan between polls, so once the applier has
            # nothing in flight the rest of the step needs no ticks.
            if busy:
                busy = self._advance_applier()
        self._inventory.sync()
        self._poll()
        self._advance_applier()
        self.steps += 1

    def _poll(self) -> None:
        for agent in self._agents:
            try:
                agent.poll_once()
            except Exception:
                self.agent_failures += 1
                log.exception("agent of %s failed to poll", agent.host)
        for done in self._after_poll:
            try:
                done()
            except Exception:
                log.exception("after-poll hook %s failed", done)

    def _advance_applier(self) -> bool:
        """One applier round; True while there may be work in flight."""
        if self._applier is None:
            return False
        try:
            return bool(self._applier.advance_all())
        except Exception:
            log.exception("applier round failed")
            return True
