"""A notifier that publishes each batch as one event on the bus; the event id is
the batch's dedup key, so consumers that dedup by id see a redelivery once."""

from __future__ import annotations

from opendrs.bus import codec
from opendrs.cep.routing import Batch
from opendrs.domain.clock import Clock
from opendrs.domain.event import Event
from opendrs.domain.ports import Bus

NOTIFICATIONS = "alarms.notification"
EVENT_TYPE = "opendrs.alarm.notification"


class BusNotifier:
    name = "bus"

    def __init__(self, bus: Bus, clock: Clock, subject: str = NOTIFICATIONS) -> None:
        self._bus = bus
        self._clock = clock
        self._subject = subject

    def send(self, batch: Batch) -> None:
        self._bus.publish(
            self._subject,
            Event(
                type=EVENT_TYPE,
                source="opendrs.cep",
                time=self._clock.now(),
                subject=",".join(f"{k}={v}" for k, v in batch.group),
                id=batch.dedup_key,
                data={
                    "group": dict(batch.group),
                    "dedup_key": batch.dedup_key,
                    "notifications": [codec.transition_to_dict(t) for t in batch.notifications],
                },
            ),
        )
