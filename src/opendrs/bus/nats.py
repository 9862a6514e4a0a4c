"""The NATS JetStream transport: one durable stream per namespace holds every
subject; a named group is a durable pull consumer (it resumes where it left off,
its members share the messages), a subscription without a group is an ephemeral
consumer that sees what is published from then on.

Layout on the server, for namespace `opendrs`: stream `opendrs` with subjects
`opendrs.>`; subject `samples.3` is stored as `opendrs.samples.3`; group `cep`
on pattern `samples.3` is the durable consumer `cep__samples_3-<hash>`.
Publishing waits for the stream's acknowledgement and sets `Nats-Msg-Id` to
the CloudEvents id, so a retried publish is stored once (within the stream's
duplicate window); consumers also drop ids they have already seen."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Coroutine
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from opendrs.bus import names
from opendrs.bus.dispatch import Route, Settle
from opendrs.bus.threaded import SessionBus, ThreadedSession
from opendrs.domain.clock import Clock
from opendrs.domain.errors import DriverError
from opendrs.domain.ports import Handler

log = logging.getLogger(__name__)

DEFAULT_URL = "nats://127.0.0.1:4222"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def consumer_name(group: str, pattern: str) -> str:
    """The durable consumer of a group on a pattern: readable, and unique per pair."""
    digest = hashlib.sha1(f"{group}\0{pattern}".encode()).hexdigest()[:8]
    return f"{_UNSAFE.sub('_', group)}__{_UNSAFE.sub('_', pattern)}-{digest}"


class _NatsSubscription:
    def __init__(self, bus: NatsBus, route: Route) -> None:
        self._bus = bus
        self.route = route
        self.consumer = ""
        self.psub: JetStreamContext.PullSubscription | None = None
        self.task: asyncio.Task[None] | None = None
        self.stopping: asyncio.Event | None = None
        self.room: asyncio.Event | None = None
        self.in_flight = 0

    @property
    def durable(self) -> bool:
        return bool(self.route.group)

    def close(self) -> None:
        self._bus._unsubscribe(self)


class NatsBus(SessionBus):
    """The Bus port over NATS JetStream; its client runs on a loop in a daemon thread
    and its handlers on a dispatcher thread, in arrival order."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        namespace: str = "opendrs",
        max_age: float = 24 * 3600.0,
        duplicate_window: float = 120.0,
        ack_wait: float = 30.0,
        max_in_flight: int = 512,
        fetch_wait: float = 1.0,
        dedup_window: int = 10_000,
        timeout: float = 5.0,
        confirm_window: int = 0,
        clock: Clock | None = None,
    ) -> None:
        self.namespace = names.check_namespace(namespace)
        self._url = url or DEFAULT_URL
        self._max_age = max_age
        self._duplicate_window = duplicate_window
        self._ack_wait = ack_wait
        self._max_in_flight = max(1, max_in_flight)
        self._fetch_wait = fetch_wait
        self._timeout = timeout
        self._subscriptions: list[_NatsSubscription] = []
        self._settling: set[asyncio.Task[None]] = set()
        self._last_error: Exception | None = None
        self._session = ThreadedSession(
            "NATS",
            self._url,
            namespace=self.namespace,
            send=self._send,
            timeout=timeout,
            confirm_window=confirm_window,
            dedup_window=dedup_window,
            clock=clock,
        )
        self.stats = self._session.stats
        self._nc, self._js = self._session.open(self._connect())

    # --- the port ---------------------------------------------------------

    def subscribe(self, pattern: str, handler: Handler, group: str = "") -> _NatsSubscription:
        sub = _NatsSubscription(self, self._session.route(pattern, handler, group))
        self._session.run(self._start(sub), f"subscribe to {pattern}")
        self._subscriptions.append(sub)
        return sub

    def drain(self, timeout: float = 5.0) -> bool:
        """True once every consumer of this bus has nothing pending nor unacknowledged
        (messages are acknowledged after their handler returned)."""
        self._session.confirms.wait_all()
        dispatcher = self._session.dispatcher
        deadline = time.monotonic() + timeout
        pause = 0.002
        while True:
            if self._session.closed:
                return True
            try:
                before = dispatcher.submitted
                idle = dispatcher.idle() and self._session.run(self._consumers_idle(), "drain")
                if idle and before == dispatcher.submitted and dispatcher.idle():
                    return True
            except DriverError as exc:
                log.warning("drain: %s", exc)
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(pause, left))  # polling the server's counters, bounded
            pause = min(pause * 2, 0.05)

    # --- operations -------------------------------------------------------

    def remove_namespace(self) -> None:
        """Delete the stream and with it every message and consumer of the namespace
        (tests, and operators retiring a deployment); closes the bus."""
        if not self._session.closed:
            self._unsubscribe_all()
            try:
                self._session.run(self._js.delete_stream(self.namespace), "delete the stream")
            except DriverError as exc:
                if "not found" not in str(exc).lower():
                    raise
        self.close()

    # --- inside -----------------------------------------------------------

    async def _connect(self) -> tuple[Client, JetStreamContext]:
        try:
            # the client retries forever (as it should once connected): bound the first try
            nc = await asyncio.wait_for(
                nats.connect(
                    self._url,
                    name=f"opendrs-{self.namespace}",
                    connect_timeout=max(1, int(self._timeout)),
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=self._on_error,
                ),
                self._timeout,
            )
        except TimeoutError:
            last = self._last_error
            cause = f"{type(last).__name__}: {last}" if last else "no answer"
            raise DriverError(
                f"NATS at {self._url}: cannot connect within {self._timeout}s ({cause})",
                transient=True,
            ) from None
        js = nc.jetstream(timeout=self._timeout)
        try:
            await js.stream_info(self.namespace)
        except nats.js.errors.NotFoundError:
            await js.add_stream(
                api.StreamConfig(
                    name=self.namespace,
                    subjects=[f"{self.namespace}.>"],
                    retention=api.RetentionPolicy.LIMITS,
                    storage=api.StorageType.FILE,
                    discard=api.DiscardPolicy.OLD,
                    max_age=self._max_age,
                    duplicate_window=self._duplicate_window,
                )
            )
        except nats.js.errors.ServiceUnavailableError as exc:
            await nc.close()
            raise DriverError(
                f"NATS at {self._url} has no JetStream (start nats-server with -js): {exc}"
            ) from exc
        return nc, js

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = exc
        log.warning("NATS client: %s: %s", type(exc).__name__, exc)

    async def _disconnect(self) -> None:
        if self._settling:
            await asyncio.wait(set(self._settling), timeout=self._timeout)
        try:
            await self._nc.flush(timeout=max(1, int(self._timeout)))
        except Exception as exc:
            log.warning("flushing NATS before closing: %s", exc)
        await self._nc.close()

    def _send(self, subject: str, payload: bytes, message_id: str) -> Coroutine[Any, Any, Any]:
        headers: dict[str, Any] | None = {api.Header.MSG_ID: message_id} if message_id else None
        return self._js.publish(
            f"{self.namespace}.{subject}",
            payload,
            timeout=self._timeout,
            stream=self.namespace,
            headers=headers,
        )

    async def _start(self, sub: _NatsSubscription) -> None:
        route = sub.route
        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.NEW,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self._ack_wait,
            max_ack_pending=max(self._max_in_flight * 4, 1024),
            filter_subject=f"{self.namespace}.{route.pattern}",
        )
        durable = None
        if sub.durable:
            durable = consumer_name(route.group, route.pattern)
        else:
            config.inactive_threshold = max(30.0, 10 * self._fetch_wait)
        sub.psub = await self._js.pull_subscribe(
            f"{self.namespace}.{route.pattern}",
            durable=durable,
            stream=self.namespace,
            config=config,
        )
        sub.consumer = durable or str(sub.psub._consumer)
        sub.stopping = asyncio.Event()
        sub.room = asyncio.Event()
        sub.task = asyncio.create_task(self._pump(sub), name=f"nats-pump-{sub.consumer}")

    async def _pump(self, sub: _NatsSubscription) -> None:
        """Fetch while there is room; hand each message to the dispatcher."""
        assert sub.psub is not None and sub.stopping is not None and sub.room is not None
        prefix = len(self.namespace) + 1
        while not sub.stopping.is_set():
            room = self._max_in_flight - sub.in_flight
            if room <= 0:
                sub.room.clear()
                await _first(sub.room.wait(), sub.stopping.wait())
                continue
            try:
                messages = await sub.psub.fetch(batch=room, timeout=self._fetch_wait)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.failures[f"fetch:{sub.route.name}"] += 1
                log.warning("fetching for %s: %s (retrying)", sub.route.name, exc)
                await _first(sub.stopping.wait(), asyncio.sleep(1.0))
                continue
            for msg in messages:
                if sub.stopping.is_set():
                    await _settle(msg, False)
                    continue
                sub.in_flight += 1
                self._session.dispatcher.submit(
                    sub.route,
                    msg.subject[prefix:],
                    msg.data,
                    _message_key(msg),
                    self._settler(sub, msg),
                )

    def _settler(self, sub: _NatsSubscription, msg: Msg) -> Settle:
        """What the dispatcher calls when done with `msg` (on its own thread)."""

        def settle(handled: bool) -> None:
            self._session.loop.call_soon(lambda: self._settled(sub, msg, handled))

        return settle

    def _settled(self, sub: _NatsSubscription, msg: Msg, handled: bool) -> None:
        sub.in_flight -= 1
        if sub.room is not None:
            sub.room.set()
        task = asyncio.get_running_loop().create_task(_settle(msg, handled))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    def _unsubscribe(self, sub: _NatsSubscription) -> None:
        sub.route.closed = True
        if sub not in self._subscriptions:
            return
        self._subscriptions.remove(sub)
        try:
            self._session.run(self._stop(sub), f"unsubscribe from {sub.route.pattern}")
        except DriverError as exc:
            log.warning("%s", exc)

    def _unsubscribe_all(self) -> None:
        """Stop every subscription at once (each waits for its fetch in progress)."""
        subs = list(self._subscriptions)
        self._subscriptions.clear()
        for sub in subs:
            sub.route.closed = True

        async def stop_all() -> None:
            await asyncio.gather(*(self._stop(sub) for sub in subs), return_exceptions=True)

        try:
            self._session.run(stop_all(), "unsubscribe")
        except DriverError as exc:
            log.warning("%s", exc)

    async def _stop(self, sub: _NatsSubscription) -> None:
        if sub.stopping is not None:
            sub.stopping.set()
        if sub.task is not None:
            try:
                await asyncio.wait_for(sub.task, self._fetch_wait + self._timeout)
            except (TimeoutError, asyncio.CancelledError):
                sub.task.cancel()
            except Exception as exc:
                log.warning("stopping %s: %s", sub.route.name, exc)
        if sub.psub is not None:
            await sub.psub.unsubscribe()
        if not sub.durable and sub.consumer:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self._js.delete_consumer(self.namespace, sub.consumer)

    async def _consumers_idle(self) -> bool:
        for sub in list(self._subscriptions):
            if sub.psub is None or sub.in_flight:
                return False
            info = await sub.psub.consumer_info()
            if info.num_pending or info.num_ack_pending:
                return False
        return True


def _message_key(msg: Msg) -> str:
    try:
        meta = msg.metadata
        return f"{meta.stream}:{meta.sequence.stream}"
    except Exception:
        return ""


async def _settle(msg: Msg, handled: bool) -> None:
    """Acknowledge a handled message; give back one that was not (a closed route)."""
    try:
        if handled:
            await msg.ack()
        else:
            await msg.nak()
    except Exception as exc:
        log.debug("settling a NATS message: %s", exc)


async def _first(*waits: Coroutine[Any, Any, Any]) -> None:
    """Wait until the first of `waits` finishes; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
