"""The in-memory transport: the embedded default, synchronous and deterministic.

Published events go through the real codec (so nothing passes here that would
not pass NATS), are queued, and are delivered in order; a handler that raises
is logged and counted, and never stops delivery to the others."""

from __future__ import annotations

import itertools
import logging
from collections import Counter, deque
from dataclasses import dataclass, field

from opendrs.bus import codec, subjects
from opendrs.domain.errors import InvalidInput
from opendrs.domain.event import Event
from opendrs.domain.ports import Handler

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Subscription:
    bus: MemoryBus
    pattern: str
    handler: Handler
    group: str
    closed: bool = False

    def close(self) -> None:
        self.closed = True
        self.bus._subscriptions = [s for s in self.bus._subscriptions if s is not self]


@dataclass
class MemoryBus:
    failures: Counter[str] = field(default_factory=Counter)
    delivered: int = 0
    _subscriptions: list[_Subscription] = field(default_factory=list)
    _queue: deque[tuple[str, bytes]] = field(default_factory=deque)
    _dispatching: bool = False
    _round_robin: dict[str, itertools.count[int]] = field(default_factory=dict)

    def publish(self, subject: str, event: Event) -> None:
        self._queue.append((subject, codec.encode(event)))
        if not self._dispatching:
            self._drain()

    def subscribe(self, pattern: str, handler: Handler, group: str = "") -> _Subscription:
        sub = _Subscription(self, pattern, handler, group)
        self._subscriptions.append(sub)
        return sub

    def close(self) -> None:
        self._subscriptions.clear()
        self._queue.clear()

    def _drain(self) -> None:
        self._dispatching = True
        try:
            while self._queue:
                subject, payload = self._queue.popleft()
                self._deliver(subject, payload)
        finally:
            self._dispatching = False

    def _deliver(self, subject: str, payload: bytes) -> None:
        try:
            event = codec.decode(payload, source=subject)
        except InvalidInput as exc:
            self._dead_letter(subject, payload, str(exc))
            return
        chosen: dict[str, _Subscription] = {}
        plain: list[_Subscription] = []
        for sub in self._subscriptions:
            if not subjects.matches(sub.pattern, subject):
                continue
            if sub.group:
                members = [s for s in self._subscriptions if s.group == sub.group]
                members = [s for s in members if subjects.matches(s.pattern, subject)]
                if sub.group not in chosen:
                    turn = next(self._round_robin.setdefault(sub.group, itertools.count()))
                    chosen[sub.group] = members[turn % len(members)]
            else:
                plain.append(sub)
        for sub in [*plain, *chosen.values()]:
            if sub.closed:
                continue
            try:
                sub.handler(event)
                self.delivered += 1
            except Exception:
                self.failures[sub.pattern] += 1
                log.exception("handler for %s failed on %s (%s)", sub.pattern, subject, event.id)

    def _dead_letter(self, subject: str, payload: bytes, reason: str) -> None:
        log.warning("dead-lettering a message on %s: %s", subject, reason)
        self.failures[subjects.DEAD_LETTER] += 1
        dead = Event(
            type="opendrs.deadletter",
            source=subject,
            time=0.0,
            data={
                "subject": subject,
                "reason": reason,
                "payload": payload.decode("utf-8", "replace"),
            },
        )
        if subject != subjects.DEAD_LETTER:
            self._queue.append((subjects.DEAD_LETTER, codec.encode(dead)))
