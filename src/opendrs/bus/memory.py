"""The in-memory transport: the embedded default, synchronous and deterministic.

Published events go through the real codec (so nothing passes here that would
not pass NATS), are queued, and are delivered in order by the publishing
thread; a handler that raises is logged and counted, and never stops delivery
to the others. It lives and dies with its process: a named group is not
durable across processes (use NATS or RabbitMQ for that)."""

from __future__ import annotations

import itertools
import threading
from collections import Counter, deque

from opendrs.bus import codec, deadletter, dispatch, subjects
from opendrs.bus.dispatch import BusStats, Route
from opendrs.domain.clock import Clock, WallClock
from opendrs.domain.errors import InvalidInput
from opendrs.domain.event import Event
from opendrs.domain.ports import Handler


class _Subscription:
    def __init__(self, bus: MemoryBus, route: Route) -> None:
        self._bus = bus
        self.route = route

    @property
    def closed(self) -> bool:
        return self.route.closed

    def close(self) -> None:
        self._bus._forget(self)


class MemoryBus:
    """Publish runs delivery at once; a publish from another thread while one is
    delivering is queued and delivered by the thread that is already delivering."""

    def __init__(self, *, dedup_window: int = 10_000, clock: Clock | None = None) -> None:
        self.stats = BusStats()
        self._dedup_window = dedup_window
        self._clock: Clock = clock or WallClock()
        self._subscriptions: list[_Subscription] = []
        self._queue: deque[tuple[str, bytes]] = deque()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._dispatcher: threading.Thread | None = None
        self._round_robin: dict[tuple[str, str], itertools.count[int]] = {}

    @property
    def failures(self) -> Counter[str]:
        return self.stats.failures

    @property
    def delivered(self) -> int:
        return self.stats.delivered

    def publish(self, subject: str, event: Event) -> None:
        self.publish_raw(subjects.check_subject(subject), codec.encode(event))

    def publish_raw(self, subject: str, payload: bytes) -> None:
        """Put bytes on a subject as they are (tests use it to send garbage)."""
        with self._lock:
            self._queue.append((subject, payload))
            if self._dispatcher is not None:
                return
            self._dispatcher = threading.current_thread()
        self._drain_queue()

    def subscribe(self, pattern: str, handler: Handler, group: str = "") -> _Subscription:
        route = Route(
            subjects.check_pattern(pattern),
            handler,
            group,
            stats=self.stats,
            dead_letters=self._dead_letter,
            dedup_window=self._dedup_window,
        )
        sub = _Subscription(self, route)
        with self._lock:
            self._subscriptions.append(sub)
        return sub

    def drain(self, timeout: float = 5.0) -> bool:
        with self._idle:
            if self._dispatcher is threading.current_thread():
                return not self._queue  # a handler asking: it cannot wait for itself
            return self._idle.wait_for(
                lambda: not self._queue and self._dispatcher is None, timeout
            )

    def close(self) -> None:
        with self._lock:
            for sub in self._subscriptions:
                sub.route.closed = True
            self._subscriptions.clear()
            self._queue.clear()

    def _forget(self, sub: _Subscription) -> None:
        sub.route.closed = True
        with self._lock:
            self._subscriptions = [s for s in self._subscriptions if s is not sub]

    def _drain_queue(self) -> None:
        try:
            while True:
                with self._lock:
                    if not self._queue:
                        self._dispatcher = None
                        self._idle.notify_all()
                        return
                    subject, payload = self._queue.popleft()
                    chosen = self._receivers(subject)
                self._deliver(subject, payload, chosen)
        except BaseException:
            with self._lock:
                self._dispatcher = None
                self._idle.notify_all()
            raise

    def _receivers(self, subject: str) -> list[_Subscription]:
        """Every plain subscription that matches, and one member of each group, in turn."""
        plain: list[_Subscription] = []
        groups: dict[tuple[str, str], list[_Subscription]] = {}
        for sub in self._subscriptions:
            route = sub.route
            if not subjects.matches(route.pattern, subject):
                continue
            if route.group:
                groups.setdefault((route.group, route.pattern), []).append(sub)
            else:
                plain.append(sub)
        for key, members in groups.items():
            turn = next(self._round_robin.setdefault(key, itertools.count()))
            plain.append(members[turn % len(members)])
        return plain

    def _deliver(self, subject: str, payload: bytes, receivers: list[_Subscription]) -> None:
        try:
            event = codec.decode(payload, source=subject)
        except InvalidInput as exc:
            dispatch.reject(self.stats, self._dead_letter, subject, payload, str(exc), "", "")
            return
        for sub in receivers:
            sub.route.deliver(subject, event, payload, event.id)

    def _dead_letter(self, subject: str, payload: bytes, reason: str, key: str, who: str) -> None:
        letter = deadletter.dead_letter(
            subject, payload, reason, time=self._clock.now(), key=key, consumer=who
        )
        with self._lock:
            self._queue.append((subjects.DEAD_LETTER, codec.encode(letter)))
