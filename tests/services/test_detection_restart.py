"""Detection over a real SQL store: a restart neither re-notifies nor falsely
clears, a threshold edit keeps the state, deletions retire alarms, notifications
reach the dispatcher, and a failing store or notifier does not stop the loop."""

from __future__ import annotations

from pathlib import Path

from opendrs.bus import codec, subjects
from opendrs.bus.memory import MemoryBus
from opendrs.cep.engine import CepEngine
from opendrs.cep.routing import Batch, NotificationRouter
from opendrs.cep.rule import Missing, MissingPolicy, ThresholdRule
from opendrs.domain.alarm import AlarmState
from opendrs.domain.clock import ManualClock
from opendrs.domain.event import Event
from opendrs.domain.sample import EntityKind, Sample, SampleType
from opendrs.notify.dispatcher import Dispatcher
from opendrs.services.detection import ENTITY_DELETED, Detection
from opendrs.store.sql.cep_state import CepStateStore
from opendrs.store.sql.database import open_database
from opendrs.store.sql.repositories import SqlStore


def rule(threshold: float = 80.0) -> ThresholdRule:
    return ThresholdRule(
        name="hot",
        meter="cpu_util",
        threshold=threshold,
        for_seconds=120.0,
        clear_threshold=threshold - 10,
        missing=Missing(MissingPolicy.NO_DATA, 600.0),
    )


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, batch: Batch) -> None:
        self.sent += [(t.entity, t.current.value) for t in batch.notifications]


class Process:
    """One CEP process on the shared database; a new one is a restart."""

    def __init__(self, url: str, clock: ManualClock, threshold: float = 80.0) -> None:
        self.database = open_database(url)
        self.bus = MemoryBus()
        self.store = SqlStore(self.database)
        self.recorder = Recorder()
        dispatcher = Dispatcher(NotificationRouter(), [self.recorder], clock)
        self.detection = Detection(
            self.bus,
            CepEngine([rule(threshold)]),
            self.store,
            clock=clock,
            state=CepStateStore(self.database, clock),
            dispatcher=dispatcher,
        )
        self.detection.start()
        self.clock = clock

    def feed(self, value: float, entity: str = "vm1") -> None:
        sample = Sample(
            "cpu_util",
            entity,
            value,
            "%",
            SampleType.GAUGE,
            self.clock.now(),
            EntityKind.INSTANCE,
            "h1",
        )
        self.bus.publish(
            subjects.samples(0), codec.samples_event([sample], source="t", time=self.clock.now())
        )
        self.bus.drain()
        self.detection.tick()
        self.clock.advance(60)

    def close(self) -> None:
        self.detection.stop()
        self.bus.close()
        self.database.close()


def test_a_restart_resumes_without_renotifying_or_clearing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cep.db'}"
    clock = ManualClock()
    first = Process(url, clock)
    for value in (90, 90, 90):
        first.feed(value)
    assert first.recorder.sent == [("vm1", "alarm")]
    first.close()

    clock.advance(300)  # down for five minutes: less than the no_data delay
    second = Process(url, clock)
    second.feed(75)  # still above the clear threshold of 70: nothing to say
    second.feed(90)
    assert second.recorder.sent == []
    assert [a.state for a in second.store.list_alarms()] == [AlarmState.ALARM]
    second.feed(50)
    assert second.recorder.sent == [("vm1", "ok")]
    second.close()


def test_a_pending_timer_survives_a_restart_and_a_threshold_edit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cep.db'}"
    clock = ManualClock()
    first = Process(url, clock)
    first.feed(90)
    first.feed(90)  # pending since 0, 60 s held
    first.close()
    second = Process(url, clock, threshold=85.0)  # edited rule, same name
    second.feed(90)  # 120 s held: fires now, not 120 s after the restart
    assert second.recorder.sent == [("vm1", "alarm")]
    history = second.store.history()
    assert history[0].rule_version == rule(85.0).version != rule(80.0).version
    second.close()


def test_a_deleted_instance_retires_its_alarm(tmp_path: Path) -> None:
    clock = ManualClock()
    process = Process(f"sqlite:///{tmp_path / 'cep.db'}", clock)
    for _ in range(3):
        process.feed(95)
    process.bus.publish(
        ENTITY_DELETED, Event("opendrs.inventory.deleted", "t", clock.now(), {"entity": "vm1"})
    )
    process.bus.drain()
    clock.advance(3600)
    process.detection.tick()
    assert process.recorder.sent == [("vm1", "alarm"), ("vm1", "ok")]
    assert process.store.list_alarms() == []
    process.close()


class BrokenStore:
    def record(self, transition: object) -> None:
        raise RuntimeError("database down")

    def list_alarms(self, include_ok: bool = False) -> list[object]:
        return []

    def history(self, limit: int = 100) -> list[object]:
        return []


def test_a_failing_store_is_counted_and_detection_carries_on() -> None:
    bus = MemoryBus()
    recorder = Recorder()
    clock = ManualClock()
    detection = Detection(
        bus,
        CepEngine([ThresholdRule(name="hot", meter="cpu_util", threshold=80.0)]),
        BrokenStore(),  # type: ignore[arg-type]
        clock=clock,
        dispatcher=Dispatcher(NotificationRouter(), [recorder], clock),
    )
    detection.start()
    for t, v in ((0, 90), (60, 10)):
        s = Sample("cpu_util", "vm1", v, "%", SampleType.GAUGE, t, EntityKind.INSTANCE, "h1")
        bus.publish(subjects.samples(1), codec.samples_event([s], source="t", time=t))
        bus.drain()
    assert recorder.sent == [("vm1", "alarm"), ("vm1", "ok")]
    assert detection.failures == 2
    detection.stop()


def test_a_worker_takes_over_the_state_of_the_partitions_it_gains(tmp_path: Path) -> None:
    from opendrs.bus.partitioning import partition_of

    url = f"sqlite:///{tmp_path / 'cep.db'}"
    clock = ManualClock()
    database = open_database(url)
    bus = MemoryBus()
    state = CepStateStore(database, clock)

    def worker() -> Detection:
        return Detection(
            bus, CepEngine([rule()]), SqlStore(database), clock=clock, state=state, consume=False
        )

    first, second = worker(), worker()
    first.hold(range(8), 8)
    pending = [
        Sample("cpu_util", f"vm{i}", 90.0, "%", SampleType.GAUGE, 0.0, EntityKind.INSTANCE, "h1")
        for i in range(12)
    ]
    first.on_samples(codec.samples_event(pending, source="t", time=0.0))
    low = set(range(4))
    first.hold(range(4, 8), 8)  # lets 0-3 go: forgotten here, kept in the store
    second.hold(low, 8)
    mine = {a.entity for a in second.engine.states()}
    assert mine == {f"vm{i}" for i in range(12) if partition_of(f"vm{i}", 8) in low}
    assert {a.entity for a in first.engine.states()}.isdisjoint(mine)
    # the taken-over hold timers continue: pending since 0, fires at 120
    later = [
        Sample("cpu_util", name, 90.0, "%", SampleType.GAUGE, 120.0, EntityKind.INSTANCE, "h1")
        for name in sorted(mine)
    ]
    second.on_samples(codec.samples_event(later, source="t", time=120.0))
    assert {a.state for a in second.engine.states()} == {AlarmState.ALARM}
    database.close()
