"""The dispatcher survives failing notifiers; rule webhooks, bus and log notifiers."""

from __future__ import annotations

import logging

import pytest

from opendrs.bus.memory import MemoryBus
from opendrs.cep.engine import Delivery
from opendrs.cep.routing import Batch, NotificationRouter
from opendrs.domain.alarm import AlarmState, AlarmTransition
from opendrs.domain.clock import ManualClock
from opendrs.domain.event import Event
from opendrs.notify.busevent import NOTIFICATIONS, BusNotifier
from opendrs.notify.dispatcher import Dispatcher
from opendrs.notify.logline import LogNotifier


class Recorder:
    def __init__(self, name: str, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.batches: list[Batch] = []

    def send(self, batch: Batch) -> None:
        if self.fail:
            raise RuntimeError("receiver down")
        self.batches.append(batch)


def fired(entity: str, t: float = 0.0) -> AlarmTransition:
    return AlarmTransition(
        "r", entity, AlarmState.OK, AlarmState.ALARM, t, 9.0, labels={"host": "h1"}
    )


def test_a_failing_notifier_is_counted_and_the_others_still_get_everything() -> None:
    broken, working = Recorder("broken", fail=True), Recorder("working")
    dispatcher = Dispatcher(NotificationRouter(), [broken, working], ManualClock())
    dispatcher.dispatch([fired("a")])
    dispatcher.dispatch([fired("b", 1)])
    assert [len(b.notifications) for b in working.batches] == [1, 1]
    assert dispatcher.failed["broken"] == 2 and dispatcher.sent["working"] == 2


def test_rule_webhooks_get_only_what_routing_let_through() -> None:
    hooks: dict[str, Recorder] = {}

    def webhook(url: str) -> Recorder:
        return hooks.setdefault(url, Recorder(url))

    dispatcher = Dispatcher(NotificationRouter(), [], ManualClock(), webhook=webhook)
    held = AlarmTransition("r", "z", AlarmState.OK, AlarmState.ALARM, 0, 1.0, held=True)
    dispatcher.dispatch(
        [fired("a"), held], [Delivery("http://x/1", fired("a")), Delivery("http://x/1", held)]
    )
    [batch] = hooks["http://x/1"].batches
    assert [t.entity for t in batch.notifications] == ["a"]


def test_bus_notifier_uses_the_dedup_key_as_event_id() -> None:
    bus = MemoryBus()
    got: list[Event] = []
    bus.subscribe(NOTIFICATIONS, got.append)
    batch = Batch((("host", "h1"),), (fired("a"),))
    BusNotifier(bus, ManualClock(5.0)).send(batch)
    bus.drain()
    assert [e.id for e in got] == [batch.dedup_key]
    assert got[0].data["notifications"][0]["entity"] == "a"


def test_log_notifier_writes_one_line_per_notification(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="opendrs.alarms"):
        LogNotifier().send(Batch((), (fired("a"), fired("b"))))
    assert len(caplog.records) == 2 and "ok -> alarm" in caplog.records[0].getMessage()
