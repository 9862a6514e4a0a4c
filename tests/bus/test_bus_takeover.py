"""PartitionWorker on the in-memory bus, on manual time: samples reach the worker
that holds their partition, a silent worker's partitions move to a survivor, and
come back to it when it returns, never consumed by two workers at once."""

from __future__ import annotations

import pytest

from opendrs.bus import codec, partitioning, subjects
from opendrs.bus.memory import MemoryBus
from opendrs.bus.partitioning import PartitionRange
from opendrs.bus.takeover import HEARTBEAT_TYPE, PartitionWorker
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import InvalidInput
from opendrs.domain.event import Event
from opendrs.domain.sample import Sample, SampleType

P = 8
INTERVAL = 5.0


class Recorder:
    def __init__(self) -> None:
        self.entities: list[str] = []

    def __call__(self, event: Event) -> None:
        self.entities.extend(s.entity for s in codec.samples_of(event))


def worker(
    bus: MemoryBus, clock: ManualClock, name: str, home: str, rec: Recorder
) -> PartitionWorker:
    return PartitionWorker(
        bus,
        role="cep",
        worker=name,
        home=PartitionRange.parse(home, P),
        partitions=P,
        handler=rec,
        clock=clock,
        interval=INTERVAL,
    )


def publish_samples(bus: MemoryBus, entities: list[str]) -> None:
    for entity in entities:
        sample = Sample(
            meter="cpu_util", entity=entity, value=1.0, unit="%", type=SampleType.GAUGE, time=0.0
        )
        bus.publish(
            partitioning.sample_subject(entity, P),
            codec.samples_event([sample], source="agent", time=0.0),
        )


def tick(clock: ManualClock, *workers: PartitionWorker) -> None:
    clock.advance(INTERVAL)
    for w in workers:
        w.tick()
    held = [w.consuming for w in workers]
    for i, mine in enumerate(held):
        for theirs in held[i + 1 :]:
            assert not mine & theirs, "a partition is consumed by two workers"


def owned_by(entities: list[str], partitions: frozenset[int]) -> list[str]:
    return [e for e in entities if partitioning.partition_of(e, P) in partitions]


def test_takeover_and_hand_back() -> None:
    bus, clock = MemoryBus(), ManualClock(1_000.0)
    got_a, got_b = Recorder(), Recorder()
    a = worker(bus, clock, "a", "0-3", got_a)
    b = worker(bus, clock, "b", "4-7", got_b)
    a.start()
    b.start()
    tick(clock, a, b)
    assert a.consuming == b.consuming == frozenset()  # warming up: two intervals
    tick(clock, a, b)
    assert (a.consuming, b.consuming) == (frozenset(range(4)), frozenset(range(4, 8)))

    entities = [f"vm-{i}" for i in range(30)]
    publish_samples(bus, entities)
    assert got_a.entities == owned_by(entities, a.consuming)
    assert got_b.entities == owned_by(entities, b.consuming)

    a.stop()  # a goes; b waits out its lease (3 intervals)
    for _ in range(3):
        tick(clock, b)
    assert b.consuming == frozenset(range(P))
    got_b.entities.clear()
    publish_samples(bus, entities)
    assert got_b.entities == entities

    back = Recorder()
    a2 = worker(bus, clock, "a", "0-3", back)
    a2.start()
    for _ in range(3):
        tick(clock, a2, b)
    assert (a2.consuming, b.consuming) == (frozenset(range(4)), frozenset(range(4, 8)))
    publish_samples(bus, entities)
    assert back.entities == owned_by(entities, frozenset(range(4)))


def test_heartbeats_say_who_holds_what() -> None:
    bus, clock = MemoryBus(), ManualClock(0.0)
    beats: list[Event] = []
    bus.subscribe(subjects.heartbeats("cep"), beats.append)
    a = worker(bus, clock, "a", "0-7", Recorder())
    a.start()
    tick(clock, a)
    tick(clock, a)
    assert [e.type for e in beats] == [HEARTBEAT_TYPE] * 3
    assert beats[-1].data == {
        "worker": "a",
        "home": "0-7",
        "holding": list(range(P)),
        "partitions": P,
    }


def test_a_bad_heartbeat_is_dead_lettered_and_ignored() -> None:
    bus, clock = MemoryBus(), ManualClock(0.0)
    dead: list[Event] = []
    bus.subscribe(subjects.DEAD_LETTER, dead.append)
    a = worker(bus, clock, "a", "0-7", Recorder())
    a.start()
    bus.publish(
        subjects.heartbeats("cep"),
        Event(
            type=HEARTBEAT_TYPE,
            source="x",
            time=0.0,
            data={"worker": "z", "home": "0-3", "partitions": 16},
        ),
    )
    bus.publish(
        subjects.heartbeats("cep"), Event(type=HEARTBEAT_TYPE, source="y", time=0.0, data={})
    )
    tick(clock, a)
    tick(clock, a)
    assert a.consuming == frozenset(range(P))  # z was not heard
    reasons = [d.data["reason"] for d in dead]
    assert "16 partitions" in reasons[0] and "bad heartbeat" in reasons[1]


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(InvalidInput, match="interval"):
        PartitionWorker(
            MemoryBus(),
            role="cep",
            worker="a",
            home=PartitionRange(0, 1),
            partitions=P,
            handler=Recorder(),
            clock=ManualClock(),
            interval=0,
        )
