"""The RabbitMQ transport (aio-pika): one durable topic exchange per namespace;
a named group is a durable queue (it keeps what is published while its members
are away, and they share it), a subscription without a group is an exclusive
queue of its own that lives as long as the subscription.

Layout on the server, for namespace `opendrs`: exchange `opendrs` (topic,
durable); group `cep` on pattern `samples.3` is the durable queue
`opendrs.cep.samples.3` bound with `samples.3` (`>` binds as `#`, and a
consumer drops what `#` lets through that `>` would not: the subject itself);
dead letters are also kept in the bounded queue `opendrs.deadletter`.
Messages are persistent and publishing waits for the broker's confirm."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Coroutine
from typing import Any

import aio_pika
import aio_pika.abc

from opendrs.bus import names, subjects
from opendrs.bus.dispatch import Route
from opendrs.bus.threaded import SessionBus, ThreadedSession
from opendrs.domain.clock import Clock
from opendrs.domain.errors import DriverError
from opendrs.domain.ports import Handler

log = logging.getLogger(__name__)

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
CONTENT_TYPE = "application/cloudevents+json"
_BARRIER = "opendrs-drain"


def binding_key(pattern: str) -> str:
    """The AMQP topic binding of a NATS-style pattern: `>` becomes `#`."""
    return ".".join("#" if token == ">" else token for token in pattern.split("."))


def queue_name(namespace: str, group: str, pattern: str) -> str:
    """`opendrs.cep.samples.+`: AMQP queue names allow no `*` nor `>`, so the pattern
    is written the MQTT way (`+` one token, `#` the rest)."""
    tokens = {"*": "+", ">": "#"}
    written = ".".join(tokens.get(token, token) for token in pattern.split("."))
    return f"{namespace}.{group}.{written}"


class _RabbitSubscription:
    def __init__(self, bus: RabbitBus, route: Route) -> None:
        self._bus = bus
        self.route = route
        self.channel: aio_pika.abc.AbstractChannel | None = None
        self.queue: aio_pika.abc.AbstractQueue | None = None
        self.tag = ""

    @property
    def durable(self) -> bool:
        return bool(self.route.group)

    def close(self) -> None:
        self._bus._unsubscribe(self)


class RabbitBus(SessionBus):
    """The Bus port over RabbitMQ; its client runs on a loop in a daemon thread and
    its handlers on a dispatcher thread, in arrival order."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        namespace: str = "opendrs",
        prefetch: int = 256,
        dead_letter_limit: int = 10_000,
        dedup_window: int = 10_000,
        timeout: float = 5.0,
        confirm_window: int = 0,
        clock: Clock | None = None,
    ) -> None:
        self.namespace = names.check_namespace(namespace)
        self._url = url or DEFAULT_URL
        self._prefetch = max(1, prefetch)
        self._dead_letter_limit = dead_letter_limit
        self._timeout = timeout
        self._instance = uuid.uuid4().hex
        self._tokens = itertools.count()
        self._barriers: dict[str, threading.Event] = {}
        self._subscriptions: list[_RabbitSubscription] = []
        self._declared: set[str] = set()
        self._settling: set[asyncio.Task[None]] = set()
        self._session = ThreadedSession(
            "RabbitMQ",
            _redacted(self._url),
            namespace=self.namespace,
            send=self._send,
            timeout=timeout,
            confirm_window=confirm_window,
            dedup_window=dedup_window,
            clock=clock,
        )
        self.stats = self._session.stats
        self._session.open(self._connect())

    # --- the port ---------------------------------------------------------

    def subscribe(self, pattern: str, handler: Handler, group: str = "") -> _RabbitSubscription:
        sub = _RabbitSubscription(self, self._session.route(pattern, handler, group))
        self._session.run(self._start(sub), f"subscribe to {pattern}")
        self._subscriptions.append(sub)
        return sub

    def drain(self, timeout: float = 5.0) -> bool:
        """Send a marker through each queue this bus consumes and wait until every
        marker has come out of the dispatcher: queues are FIFO, so what was in a
        queue before its marker has been handled. Repeated while handlers publish."""
        self._session.confirms.wait_all()
        dispatcher = self._session.dispatcher
        deadline = time.monotonic() + timeout
        while not self._session.closed:
            before = dispatcher.submitted
            if not self._barrier_round(deadline):
                return False
            if before == dispatcher.submitted:
                return True
        return True

    # --- operations -------------------------------------------------------

    def remove_namespace(self) -> None:
        """Delete the exchange, the dead-letter queue and the group queues this bus
        declared (tests, and operators retiring a deployment); closes the bus."""
        if not self._session.closed:
            self._unsubscribe_all()
            self._session.run(self._remove(), "remove the namespace")
        self.close()

    # --- inside -----------------------------------------------------------

    async def _connect(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self._url,
            timeout=self._timeout,
            client_properties={"connection_name": f"opendrs-{self.namespace}"},
        )
        self._channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await self._channel.declare_exchange(
            self.namespace, aio_pika.ExchangeType.TOPIC, durable=True
        )
        kept = await self._channel.declare_queue(
            f"{self.namespace}.{subjects.DEAD_LETTER}",
            durable=True,
            arguments={"x-max-length": self._dead_letter_limit},
        )
        await kept.bind(self._exchange, routing_key=subjects.DEAD_LETTER)
        self._declared.add(kept.name)

    async def _disconnect(self) -> None:
        if self._settling:
            await asyncio.wait(set(self._settling), timeout=self._timeout)
        await self._connection.close()

    async def _remove(self) -> None:
        for name in sorted(self._declared):
            await self._channel.queue_delete(name)
        await self._channel.exchange_delete(self.namespace)
        self._declared.clear()

    def _send(self, subject: str, payload: bytes, message_id: str) -> Coroutine[Any, Any, Any]:
        message = aio_pika.Message(
            payload,
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id or None,
        )
        return self._exchange.publish(message, routing_key=subject, timeout=self._timeout)

    async def _start(self, sub: _RabbitSubscription) -> None:
        route = sub.route
        channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self._prefetch)
        if sub.durable:
            name = queue_name(self.namespace, route.group, route.pattern)
            queue = await channel.declare_queue(name, durable=True)
            self._declared.add(name)
        else:
            queue = await channel.declare_queue(None, exclusive=True, auto_delete=True)
        await queue.bind(self.namespace, routing_key=binding_key(route.pattern))
        sub.channel, sub.queue = channel, queue

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            self._received(sub, message)

        sub.tag = await queue.consume(on_message)

    def _received(
        self, sub: _RabbitSubscription, message: aio_pika.abc.AbstractIncomingMessage
    ) -> None:
        """On the loop, in arrival order: hand the message to the dispatcher."""
        token = (message.headers or {}).get(_BARRIER)
        if token is not None:
            self._barrier_arrived(_text(token), message)
            return
        subject = message.routing_key or ""
        if not subjects.matches(sub.route.pattern, subject):
            self._settle(message, True)  # `#` also matches what `>` does not
            return
        self._session.dispatcher.submit(
            sub.route,
            subject,
            message.body,
            message.message_id or "",
            lambda handled: self._session.loop.call_soon(lambda: self._settle(message, handled)),
        )

    def _settle(self, message: aio_pika.abc.AbstractIncomingMessage, handled: bool) -> None:
        async def settle() -> None:
            try:
                if handled:
                    await message.ack()
                else:
                    await message.nack(requeue=True)
            except Exception as exc:
                log.debug("settling a RabbitMQ message: %s", exc)

        task = asyncio.get_running_loop().create_task(settle())
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    def _barrier_arrived(self, token: str, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        waiter = self._barriers.get(token)
        if waiter is not None:
            self._session.dispatcher.call(waiter.set)
            self._settle(message, True)
        elif token.startswith(self._instance):
            self._settle(message, True)  # ours but given up on: drop it
        else:
            self._settle(message, False)  # another member's drain: give it back

    def _barrier_round(self, deadline: float) -> bool:
        waiters: list[threading.Event] = []
        tokens: list[str] = []
        try:
            for sub in list(self._subscriptions):
                if sub.queue is None:
                    continue
                token = f"{self._instance}:{next(self._tokens)}"
                waiter = threading.Event()
                self._barriers[token] = waiter
                tokens.append(token)
                waiters.append(waiter)
                self._send_barrier(sub.queue.name, token, max(0.1, deadline - time.monotonic()))
            return all(waiter.wait(max(0.0, deadline - time.monotonic())) for waiter in waiters)
        finally:
            for token in tokens:
                self._barriers.pop(token, None)

    def _send_barrier(self, queue: str, token: str, ttl: float) -> None:
        marker = aio_pika.Message(b"", headers={_BARRIER: token}, expiration=ttl)
        self._session.run(
            self._channel.default_exchange.publish(
                marker, routing_key=queue, timeout=self._timeout
            ),
            "drain",
        )

    def _unsubscribe(self, sub: _RabbitSubscription) -> None:
        sub.route.closed = True
        if sub not in self._subscriptions:
            return
        self._subscriptions.remove(sub)
        try:
            self._session.run(self._cancel(sub), f"unsubscribe from {sub.route.pattern}")
        except DriverError as exc:
            log.warning("%s", exc)
        dispatcher = self._session.dispatcher
        if not dispatcher.on_thread():
            # let a handler still running finish and acknowledge before the channel goes
            done = threading.Event()
            dispatcher.call(done.set)
            done.wait(self._timeout)
        try:
            self._session.run(self._close_channel(sub), f"unsubscribe from {sub.route.pattern}")
        except DriverError as exc:
            log.warning("%s", exc)

    def _unsubscribe_all(self) -> None:
        for sub in list(self._subscriptions):
            self._unsubscribe(sub)

    async def _cancel(self, sub: _RabbitSubscription) -> None:
        if sub.queue is not None and sub.tag:
            await sub.queue.cancel(sub.tag)

    async def _close_channel(self, sub: _RabbitSubscription) -> None:
        if self._settling:
            await asyncio.wait(set(self._settling), timeout=self._timeout)
        if sub.channel is not None and not sub.channel.is_closed:
            await sub.channel.close()


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{host}"
