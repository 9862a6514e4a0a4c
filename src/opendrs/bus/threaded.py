"""What the networked transports share: the loop and dispatcher threads their
clients and handlers run on, publishing through the confirmations, dead-letters,
and the open-then-closed life of a connection. Each transport keeps what is
specific to its server (connecting, sending, consuming, draining)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, Self, TypeVar

from opendrs.bus import codec, deadletter, names, subjects
from opendrs.bus.confirms import Confirmations
from opendrs.bus.dispatch import BusStats, Dispatcher, Route
from opendrs.bus.loop import LoopThread
from opendrs.domain.clock import Clock, WallClock
from opendrs.domain.errors import DriverError, InvalidInput
from opendrs.domain.event import Event
from opendrs.domain.ports import Handler

log = logging.getLogger(__name__)

T = TypeVar("T")

# (subject, payload, message id) -> the server's publish, not yet awaited
Send = Callable[[str, bytes, str], Coroutine[Any, Any, Any]]


class ThreadedSession:
    """One connection of a transport, from `open` to `close`: runs coroutines on its
    loop thread, handlers on its dispatcher thread, and turns failures into
    DriverErrors naming the server (`product` at `address`)."""

    def __init__(
        self,
        product: str,
        address: str,
        *,
        namespace: str,
        send: Send,
        timeout: float,
        confirm_window: int,
        dedup_window: int,
        clock: Clock | None,
    ) -> None:
        self.stats = BusStats()
        self.closed = False
        self._product = product
        self._server = f"{product} at {address}"
        self._send = send
        self._timeout = timeout
        self._dedup_window = dedup_window
        self._clock: Clock = clock or WallClock()
        self.loop = LoopThread(f"opendrs-{product.lower()}-{namespace}")
        self.dispatcher = Dispatcher(f"opendrs-{product.lower()}-handlers-{namespace}")
        self.confirms = Confirmations(
            self.loop, window=confirm_window, timeout=timeout, server=self._server
        )

    def open(self, connect: Coroutine[Any, Any, T]) -> T:
        """Start both threads and connect; the threads stop again if connecting fails."""
        self.loop.start()
        self.dispatcher.start()
        try:
            return self.run(connect, "connect")
        except BaseException:
            self.dispatcher.stop()
            self.loop.stop()
            raise

    def close(
        self,
        unsubscribe_all: Callable[[], None],
        disconnect: Callable[[], Coroutine[Any, Any, Any]],
    ) -> None:
        """Wait for outstanding confirmations, stop consuming, then the threads."""
        if self.closed:
            return
        try:
            self.confirms.wait_all()
        except DriverError as exc:
            log.error("closing the bus: %s", exc)
        self.closed = True
        unsubscribe_all()
        self.dispatcher.stop(self._timeout)
        try:
            self.loop.run(disconnect(), self._timeout)
        except Exception as exc:
            log.warning("closing the %s connection: %s", self._product, exc)
        self.loop.stop(self._timeout)

    def run(self, coro: Coroutine[Any, Any, T], what: str) -> T:
        """Run `coro` on the loop and wait; an unexpected failure is a transient DriverError."""
        try:
            return self.loop.run(coro, self._timeout + 1.0)
        except (InvalidInput, DriverError):
            raise
        except Exception as exc:
            raise DriverError(
                f"{self._server}: {what} failed: {type(exc).__name__}: {exc}",
                transient=True,
            ) from exc

    def check_open(self) -> None:
        if self.closed:
            raise DriverError(f"the {self._product} bus is closed")

    def publish(self, subject: str, event: Event) -> None:
        self.send(subjects.check_subject(subject), codec.encode(event), event.id)

    def publish_raw(self, subject: str, payload: bytes, message_id: str = "") -> None:
        self.send(subjects.check_subject(subject), payload, message_id)

    def send(self, subject: str, payload: bytes, message_id: str) -> None:
        """Publish on a checked subject, through the confirmations."""
        self.check_open()
        self.confirms.send(self._send(subject, payload, message_id), f"publish on {subject}")

    def route(self, pattern: str, handler: Handler, group: str) -> Route:
        """The consumer side of a new subscription, once its arguments are checked."""
        self.check_open()
        return Route(
            subjects.check_pattern(pattern),
            handler,
            names.check_group(group),
            stats=self.stats,
            dead_letters=self.dead_letter,
            dedup_window=self._dedup_window,
        )

    def dead_letter(self, subject: str, payload: bytes, reason: str, key: str, who: str) -> None:
        letter = deadletter.dead_letter(
            subject, payload, reason, time=self._clock.now(), key=key, consumer=who
        )
        self.send(subjects.DEAD_LETTER, codec.encode(letter), letter.id)


class SessionBus:
    """The parts of the Bus port a networked transport only forwards to its
    ThreadedSession: publishing, closing (its subscriptions first, then its
    connection) and the delivery counters. The transport sets `_session` and
    defines `_unsubscribe_all` and `_disconnect`."""

    _session: ThreadedSession

    def publish(self, subject: str, event: Event) -> None:
        self._session.publish(subject, event)

    def publish_raw(self, subject: str, payload: bytes, message_id: str = "") -> None:
        """Put bytes on a subject as they are (tests use it to send garbage)."""
        self._session.publish_raw(subject, payload, message_id)

    def close(self) -> None:
        self._session.close(self._unsubscribe_all, self._disconnect)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def failures(self) -> Counter[str]:
        return self._session.stats.failures

    @property
    def delivered(self) -> int:
        return self._session.stats.delivered

    def _unsubscribe_all(self) -> None:
        raise NotImplementedError

    async def _disconnect(self) -> None:
        raise NotImplementedError
