"""The Bus port's contract (domain/ports.py), run against every transport: the
in-memory bus, NATS JetStream on 127.0.0.1:4222 and RabbitMQ on 127.0.0.1:5672.

The servers' tests skip when a server is down, and fail instead when CI=true.
Each test works in a namespace of its own (a stream, an exchange) and removes it."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import pytest

from needs import unavailable
from opendrs.bus import codec, partitioning, subjects
from opendrs.bus.memory import MemoryBus
from opendrs.bus.partitioning import PartitionRange, partition_of
from opendrs.domain.errors import InvalidInput
from opendrs.domain.event import Event
from opendrs.domain.ports import Bus
from opendrs.domain.sample import Sample, SampleType

WAIT = 15.0  # the longest any condition is waited for; never slept


class ContractBus(Bus, Protocol):
    stats: Any

    def publish_raw(self, subject: str, payload: bytes) -> None: ...


class Transport:
    """Makes clients of one transport that all share one namespace."""

    def __init__(self, kind: str, connect: Callable[[], ContractBus]) -> None:
        self.kind = kind
        self._connect = connect
        self.clients: list[ContractBus] = []

    def client(self) -> ContractBus:
        bus = self._connect()
        self.clients.append(bus)
        return bus

    def tear_down(self) -> None:
        for bus in reversed(self.clients):
            remove = getattr(bus, "remove_namespace", None)
            try:
                if remove is not None:
                    remove()
            finally:
                bus.close()


def _require(port: int, what: str) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError as exc:
        unavailable(f"{what} is not reachable on 127.0.0.1:{port} ({exc})")


DURABLE = ["nats", "nats-pipelined", "rabbitmq", "rabbitmq-pipelined"]


def open_transport(param: str) -> Transport:
    """`-pipelined`: publish returns before the server confirms (up to a window)."""
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    kind, _, mode = param.partition("-")
    window = 16 if mode == "pipelined" else 0
    if kind == "memory":
        shared = MemoryBus()
        return Transport("memory", lambda: shared)
    if kind == "nats":
        _require(4222, "NATS")
        from opendrs.bus.nats import NatsBus

        return Transport(
            "nats",
            lambda: NatsBus(namespace=namespace, fetch_wait=0.25, confirm_window=window),
        )
    _require(5672, "RabbitMQ")
    from opendrs.bus.rabbitmq import RabbitBus

    return Transport("rabbitmq", lambda: RabbitBus(namespace=namespace, confirm_window=window))


@pytest.fixture(params=["memory", *DURABLE])
def transport(request: pytest.FixtureRequest) -> Iterator[Transport]:
    made = open_transport(str(request.param))
    yield made
    made.tear_down()


# The in-memory bus lives in one process: durability across clients that come
# and go is a property of the server transports only (documented).
@pytest.fixture(params=DURABLE)
def durable_transport(request: pytest.FixtureRequest) -> Iterator[Transport]:
    made = open_transport(str(request.param))
    yield made
    made.tear_down()


@pytest.fixture
def bus(transport: Transport) -> ContractBus:
    return transport.client()


class Inbox:
    """A handler that keeps what it gets and lets a test wait for a count."""

    def __init__(self, fail_on: Callable[[Event], bool] = lambda _e: False) -> None:
        self.events: list[Event] = []
        self._fail_on = fail_on
        self._changed = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()
        if self._fail_on(event):
            raise RuntimeError(f"handler refuses {event.id}")

    def wait_for(self, count: int, timeout: float = WAIT) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.events) >= count, timeout)

    @property
    def ids(self) -> list[str]:
        with self._changed:
            return [e.id for e in self.events]


def event(tag: int | str, **data: Any) -> Event:
    return Event(
        type="opendrs.test",
        source="contract",
        time=1_700_000_000.0,
        data=data,
        id=f"e{tag}-{uuid.uuid4().hex[:6]}",
    )


def cpu(entity: str, value: float, time: float) -> Sample:
    return Sample(
        meter="cpu_util",
        entity=entity,
        value=value,
        unit="%",
        type=SampleType.GAUGE,
        time=time,
        host="h1",
        labels={"project": "p1"},
    )


def settled(bus: ContractBus) -> None:
    assert bus.drain(WAIT), "the bus did not deliver within the bounds"


# --- fan-out and wildcards -------------------------------------------------


def test_every_subscriber_of_a_pattern_gets_each_message(bus: ContractBus) -> None:
    some, many, one = Inbox(), Inbox(), Inbox()
    bus.subscribe("samples.*", some)
    bus.subscribe("samples.>", many)
    bus.subscribe("samples.1", one)
    sent = [event(i) for i in range(5)]
    for e in sent:
        bus.publish("samples.1", e)
    settled(bus)
    assert some.ids == many.ids == one.ids == [e.id for e in sent]


def test_wildcards_follow_the_nats_rules(bus: ContractBus) -> None:
    tail, one_token, middle = Inbox(), Inbox(), Inbox()
    bus.subscribe("alarms.>", tail)
    bus.subscribe("alarms.*", one_token)
    bus.subscribe("*.transition", middle)
    bare, agent, deep = event("bare"), event("agent"), event("deep")
    bus.publish("alarms", bare)
    bus.publish("alarms.agent", agent)
    bus.publish("alarms.transition.x", deep)
    transition = event("transition")
    bus.publish("alarms.transition", transition)
    settled(bus)
    assert tail.ids == [agent.id, deep.id, transition.id]  # `>` needs at least one token
    assert one_token.ids == [agent.id, transition.id]
    assert middle.ids == [transition.id]


def test_the_payload_arrives_as_it_was_sent(bus: ContractBus) -> None:
    inbox = Inbox()
    bus.subscribe("samples.0", inbox)
    sample = cpu("vm-1", 42.5, 1_700_000_000.0)
    sent = codec.samples_event([sample], source="agent/h1", time=1_700_000_001.0)
    bus.publish("samples.0", sent)
    settled(bus)
    (got,) = inbox.events
    assert (got.id, got.type, got.source, got.time) == (sent.id, sent.type, sent.source, sent.time)
    assert codec.samples_of(got) == [sample]


# --- order, groups -------------------------------------------------------


def test_order_per_subject_is_kept_for_one_publisher(bus: ContractBus) -> None:
    inbox = Inbox()
    bus.subscribe("samples.3", inbox)
    grouped = Inbox()
    bus.subscribe("samples.3", grouped, group="order")
    sent = [event(i, n=i) for i in range(200)]
    for e in sent:
        bus.publish("samples.3", e)
    settled(bus)
    assert inbox.ids == [e.id for e in sent]
    assert grouped.ids == [e.id for e in sent]


def test_members_of_a_group_share_the_messages(bus: ContractBus) -> None:
    first, second, everyone = Inbox(), Inbox(), Inbox()
    bus.subscribe("audits.requested", first, group="workers")
    bus.subscribe("audits.requested", second, group="workers")
    bus.subscribe("audits.requested", everyone)
    sent = [event(i) for i in range(60)]
    for e in sent:
        bus.publish("audits.requested", e)
    settled(bus)
    assert sorted(first.ids + second.ids) == sorted(e.id for e in sent)  # each exactly once
    assert everyone.ids == [e.id for e in sent]


def test_members_of_a_group_on_two_connections_share_the_messages(transport: Transport) -> None:
    one, two = transport.client(), transport.client()
    first, second = Inbox(), Inbox()
    one.subscribe("plans.progress", first, group="appliers")
    two.subscribe("plans.progress", second, group="appliers")
    sent = [event(i) for i in range(40)]
    for e in sent:
        one.publish("plans.progress", e)
    assert _wait(lambda: len(first.ids) + len(second.ids) >= len(sent))
    settled(one)
    settled(two)
    assert sorted(first.ids + second.ids) == sorted(e.id for e in sent)


def test_two_groups_each_get_every_message(bus: ContractBus) -> None:
    cep, ingest = Inbox(), Inbox()
    bus.subscribe("samples.>", cep, group="cep")
    bus.subscribe("samples.>", ingest, group="ingest")
    sent = [event(i) for i in range(10)]
    for e in sent:
        bus.publish("samples.7", e)
    settled(bus)
    assert cep.ids == ingest.ids == [e.id for e in sent]


# --- bad messages, failing handlers ---------------------------------------


def test_a_message_that_does_not_decode_goes_to_the_dead_letter_subject(bus: ContractBus) -> None:
    dead, alive = Inbox(), Inbox()
    bus.subscribe(subjects.DEAD_LETTER, dead)
    bus.subscribe("samples.>", alive)
    bus.publish_raw("samples.2", b"\xff not json")
    bus.publish_raw("samples.2", b'{"specversion": "1.0", "source": "x", "type": "t"}')
    after = event("after")
    bus.publish("samples.2", after)
    settled(bus)
    assert alive.ids == [after.id]  # the consumer carried on
    reasons = [d.data["reason"] for d in dead.events]
    assert len(reasons) == 2
    assert "not JSON" in reasons[0]
    assert "id" in reasons[1] and "missing" in reasons[1]
    assert all(d.data["subject"] == "samples.2" for d in dead.events)
    assert all(d.type == "opendrs.deadletter" for d in dead.events)
    assert bus.stats.dead_lettered >= 2


def test_a_handler_that_raises_does_not_stop_delivery(bus: ContractBus) -> None:
    refuses = Inbox(fail_on=lambda e: e.data.get("n") in (0, 3))
    other = Inbox()
    bus.subscribe("alarms.transition", refuses)
    bus.subscribe("alarms.transition", other)
    sent = [event(i, n=i) for i in range(6)]
    for e in sent:
        bus.publish("alarms.transition", e)
    settled(bus)
    assert refuses.ids == other.ids == [e.id for e in sent]
    assert bus.stats.failures["alarms.transition"] == 2


def test_a_handler_rejecting_invalid_input_dead_letters_the_message(bus: ContractBus) -> None:
    dead = Inbox()
    bus.subscribe(subjects.DEAD_LETTER, dead)

    def strict(event: Event) -> None:
        codec.samples_of(event)

    bus.subscribe("samples.>", strict, group="ingest")
    bus.publish("samples.5", event("bad", samples=[{"meter": "cpu_util"}]))
    settled(bus)
    (letter,) = dead.events
    assert "bad sample" in letter.data["reason"]
    assert letter.data["consumer"] == "ingest:samples.>"
    assert codec.decode(letter.data["payload"].encode()).data["samples"] == [{"meter": "cpu_util"}]


# --- at least once, consumed once ---------------------------------------


def test_the_same_event_published_twice_is_consumed_once(bus: ContractBus) -> None:
    plain, grouped = Inbox(), Inbox()
    bus.subscribe("audits.requested", plain)
    bus.subscribe("audits.requested", grouped, group="decision")
    once = event("once")
    bus.publish("audits.requested", once)
    bus.publish("audits.requested", once)  # a publisher retrying after a lost ack
    other = event("other")
    bus.publish("audits.requested", other)
    settled(bus)
    assert plain.ids == grouped.ids == [once.id, other.id]


def test_a_durable_group_gets_what_was_published_while_it_was_away(
    durable_transport: Transport,
) -> None:
    transport = durable_transport
    worker = transport.client()
    before = Inbox()
    subscription = worker.subscribe("samples.4", before, group="cep-p4")
    first = event("first")
    publisher = transport.client()
    publisher.publish("samples.4", first)
    assert before.wait_for(1)
    settled(worker)
    subscription.close()
    worker.close()

    missed = [event(i) for i in range(5)]
    for e in missed:
        publisher.publish("samples.4", e)

    back = transport.client()
    after = Inbox()
    back.subscribe("samples.4", after, group="cep-p4")
    assert after.wait_for(len(missed))
    settled(back)
    assert after.ids == [e.id for e in missed]
    assert before.ids == [first.id]


def test_a_subscriber_without_a_group_sees_only_what_comes_after(bus: ContractBus) -> None:
    bus.publish("plans.progress", event("early"))
    settled(bus)
    inbox = Inbox()
    bus.subscribe("plans.progress", inbox)
    late = event("late")
    bus.publish("plans.progress", late)
    settled(bus)
    assert inbox.ids == [late.id]


def test_a_closed_subscription_gets_nothing_more(bus: ContractBus) -> None:
    closed, open_ = Inbox(), Inbox()
    subscription = bus.subscribe("samples.6", closed)
    bus.subscribe("samples.6", open_)
    first = event("first")
    bus.publish("samples.6", first)
    settled(bus)
    subscription.close()
    second = event("second")
    bus.publish("samples.6", second)
    settled(bus)
    assert closed.ids == [first.id]
    assert open_.ids == [first.id, second.id]


def test_a_handler_may_publish(bus: ContractBus) -> None:
    results = Inbox()

    def relay(event: Event) -> None:
        bus.publish(subjects.AUDIT_REQUESTS, Event(type="relayed", source="t", time=event.time))

    bus.subscribe(subjects.AGENT_ALARMS, relay)
    bus.subscribe(subjects.AUDIT_REQUESTS, results)
    bus.publish(subjects.AGENT_ALARMS, event("alarm"))
    assert results.wait_for(1)
    settled(bus)
    assert [e.type for e in results.events] == ["relayed"]


# --- bad input from callers -------------------------------------------------


@pytest.mark.parametrize("subject", ["", "samples.*", "samples.>", "a..b", "a b", ".a"])
def test_publishing_on_a_bad_subject_is_refused(bus: ContractBus, subject: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        bus.publish(subject, event("x"))
    assert caught.value.field == "subject"


@pytest.mark.parametrize("pattern", ["", "a.>.b", "a.b*", "a..b", "a b"])
def test_subscribing_with_a_bad_pattern_is_refused(bus: ContractBus, pattern: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        bus.subscribe(pattern, Inbox())
    assert caught.value.field == "pattern"


# --- partitioned routing -----------------------------------------------------


def test_samples_reach_the_worker_that_owns_their_partition(transport: Transport) -> None:
    partitions = 8
    publisher = transport.client()
    low, high = transport.client(), transport.client()
    got_low, got_high = Inbox(), Inbox()
    for worker, inbox, owned in ((low, got_low, "0-3"), (high, got_high, "4-7")):
        for p in PartitionRange.parse(owned, partitions):
            worker.subscribe(
                subjects.samples(p), inbox, group=partitioning.partition_group("cep", p)
            )
    entities = [f"vm-{i}" for i in range(40)]
    for round_ in range(3):
        for entity in entities:
            s = cpu(entity, float(round_), float(round_))
            publisher.publish(
                partitioning.sample_subject(entity, partitions),
                codec.samples_event([s], source="agent", time=float(round_)),
            )
    assert _wait(lambda: len(got_low.ids) + len(got_high.ids) >= 3 * len(entities))
    for bus in (low, high):
        settled(bus)

    def streams(inbox: Inbox) -> dict[str, list[float]]:
        seen: dict[str, list[float]] = {}
        for e in inbox.events:
            for s in codec.samples_of(e):
                seen.setdefault(s.entity, []).append(s.value)
        return seen

    low_streams, high_streams = streams(got_low), streams(got_high)
    assert set(low_streams) | set(high_streams) == set(entities)
    assert all(partition_of(e, partitions) < 4 for e in low_streams)
    assert all(partition_of(e, partitions) >= 4 for e in high_streams)
    # whole streams, in order: every entity's samples reached one worker
    assert all(v == [0.0, 1.0, 2.0] for v in {**low_streams, **high_streams}.values())


def _wait(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Wait for a condition other threads make true; woken by nothing, so it polls
    at a short, bounded interval (the handlers' threads do the work)."""
    changed = threading.Event()
    deadline = timeout
    step = 0.005
    while not condition():
        if deadline <= 0:
            return False
        changed.wait(step)
        deadline -= step
        step = min(step * 2, 0.1)
    return True
