"""Delivery to handlers: decoding, deduplication, dead-lettering and failure
counting for one subscription (a Route), and the thread that runs handlers of
the networked transports in arrival order (the Dispatcher)."""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from opendrs.bus import codec, deadletter
from opendrs.bus.dedup import RecentIds
from opendrs.domain.errors import InvalidInput
from opendrs.domain.event import Event
from opendrs.domain.ports import Handler

log = logging.getLogger(__name__)

# (subject, payload, reason, key, consumer) -> None; publishes the dead letter
DeadLetterSink = Callable[[str, bytes, str, str, str], None]
# called once a delivery is done with: True = handled (ack), False = not (give back)
Settle = Callable[[bool], None]


@dataclass
class BusStats:
    """What a bus has done, for /metrics and tests; failures are keyed by pattern."""

    delivered: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    failures: Counter[str] = field(default_factory=Counter)


class Route:
    """The consumer side of one subscription: its handler and its dedup window."""

    def __init__(
        self,
        pattern: str,
        handler: Handler,
        group: str,
        *,
        stats: BusStats,
        dead_letters: DeadLetterSink,
        dedup_window: int = 10_000,
    ) -> None:
        self.pattern = pattern
        self.handler = handler
        self.group = group
        self.closed = False
        self._stats = stats
        self._dead_letters = dead_letters
        self._recent = RecentIds(dedup_window)

    @property
    def name(self) -> str:
        return f"{self.group}:{self.pattern}" if self.group else self.pattern

    def accept(self, subject: str, payload: bytes, key: str = "") -> bool:
        """Decode and deliver raw bytes; False if the route was closed meanwhile."""
        if self.closed:
            return False
        try:
            event = codec.decode(payload, source=subject)
        except InvalidInput as exc:
            self.reject(subject, payload, str(exc), key, consumer="")
            return True
        return self.deliver(subject, event, payload, key)

    def deliver(self, subject: str, event: Event, payload: bytes = b"", key: str = "") -> bool:
        """Run the handler once per event id; a failing handler is logged and counted."""
        if self.closed:
            return False
        if self._recent.seen(event.id):
            self._stats.duplicates += 1
            return True
        try:
            self.handler(event)
        except InvalidInput as exc:
            self._stats.failures[self.pattern] += 1
            raw = payload or codec.encode(event)
            self.reject(subject, raw, str(exc), key or event.id, self.name)
        except Exception:
            self._stats.failures[self.pattern] += 1
            log.exception("handler for %s failed on %s (event %s)", self.name, subject, event.id)
        else:
            self._stats.delivered += 1
        return True

    def reject(self, subject: str, payload: bytes, reason: str, key: str, consumer: str) -> None:
        reject(self._stats, self._dead_letters, subject, payload, reason, key, consumer)


def reject(
    stats: BusStats,
    dead_letters: DeadLetterSink,
    subject: str,
    payload: bytes,
    reason: str,
    key: str,
    consumer: str,
) -> None:
    """Send a message that cannot be consumed to the dead-letter subject, with the reason."""
    stats.failures[deadletter.DEAD_LETTER_TYPE] += 1
    if deadletter.is_dead_letter_subject(subject):
        log.error("dropping an unreadable dead letter: %s", reason)
        return
    log.warning("dead-lettering a message on %s: %s", subject, reason)
    try:
        dead_letters(subject, payload, reason, key, consumer)
    except Exception:
        log.exception("could not publish the dead letter of a message on %s", subject)
    else:
        stats.dead_lettered += 1


@dataclass(frozen=True, slots=True)
class _Delivery:
    route: Route
    subject: str
    payload: bytes
    key: str
    settle: Settle


class Dispatcher:
    """One thread that runs handlers in the order messages arrived.

    The transports' I/O runs on an asyncio loop; handlers run here instead, so
    a slow handler never stalls heartbeats and a handler may publish or
    subscribe (which wait on that loop) without deadlocking it.
    """

    def __init__(self, name: str) -> None:
        self._items: queue.SimpleQueue[_Delivery | Callable[[], None] | None] = queue.SimpleQueue()
        self._pending = 0
        self.submitted = 0  # deliveries ever handed over: tells drains whether work arrived
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, route: Route, subject: str, payload: bytes, key: str, settle: Settle) -> None:
        with self._lock:
            self.submitted += 1
        self._enqueue(_Delivery(route, subject, payload, key, settle))

    def call(self, action: Callable[[], None]) -> None:
        """Run `action` on the dispatcher thread after everything submitted so far."""
        self._enqueue(action)

    def idle(self) -> bool:
        with self._lock:
            return self._pending == 0

    def on_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._items.put(None)
            if threading.current_thread() is not self._thread:
                self._thread.join(timeout)

    def _enqueue(self, item: _Delivery | Callable[[], None]) -> None:
        with self._lock:
            self._pending += 1
        self._items.put(item)

    def _run(self) -> None:
        while True:
            item = self._items.get()
            if item is None:
                return
            try:
                if isinstance(item, _Delivery):
                    self._handle(item)
                else:
                    item()
            except Exception:
                log.exception("bus dispatcher: unexpected failure (carrying on)")
            finally:
                with self._lock:
                    self._pending -= 1

    @staticmethod
    def _handle(item: _Delivery) -> None:
        handled = False
        try:
            handled = item.route.accept(item.subject, item.payload, item.key)
        finally:
            try:
                item.settle(handled)
            except Exception:
                log.exception("could not settle a message on %s", item.subject)
