"""The CEP stage as a service: samples and agent watermark transitions go into
the rule engine; alarm transitions are recorded and published, and rule actions
become events on the bus (an overload becomes an audit request)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from opendrs.bus import codec, subjects
from opendrs.cep.engine import CepEngine
from opendrs.domain.alarm import AlarmState, AlarmTransition
from opendrs.domain.event import Event
from opendrs.domain.ports import AlarmRepository, Bus, Subscription
from opendrs.domain.sample import EntityKind, Sample, SampleType

log = logging.getLogger(__name__)

WATERMARK_METER_PREFIX = "watermark."


def watermark_sample(transition: AlarmTransition) -> Sample:
    """An agent's watermark transition as a 0/1 gauge the CEP rules can use."""
    host = transition.labels.get("host", "")
    kind = EntityKind.HOST if host in ("", transition.entity) else EntityKind.INSTANCE
    return Sample(
        meter=f"{WATERMARK_METER_PREFIX}{transition.rule}",
        entity=transition.entity,
        value=1.0 if transition.current == AlarmState.ALARM else 0.0,
        unit="bool",
        type=SampleType.GAUGE,
        time=transition.time,
        kind=kind,
        host=host or transition.entity,
        labels=dict(transition.labels),
    )


class Detection:
    def __init__(self, bus: Bus, engine: CepEngine, alarms: AlarmRepository) -> None:
        self._bus = bus
        self._engine = engine
        self._alarms = alarms
        self._subscriptions: list[Subscription] = []
        self.transitions = 0
        self.events = 0

    def start(self) -> None:
        self._subscriptions = [
            self._bus.subscribe(f"{subjects.SAMPLES}.>", self.on_samples, "cep"),
            self._bus.subscribe(subjects.AGENT_ALARMS, self.on_agent_alarm, "cep"),
        ]

    def stop(self) -> None:
        for sub in self._subscriptions:
            sub.close()
        self._subscriptions = []

    def on_samples(self, event: Event) -> None:
        self._evaluate(codec.samples_of(event))

    def on_agent_alarm(self, event: Event) -> None:
        transition = codec.transition_from_dict(event.data, source=event.source)
        self._alarms.record(transition)
        self._evaluate([watermark_sample(transition)])

    def _evaluate(self, samples: Iterable[Sample]) -> None:
        output = self._engine.process(samples)
        for transition in output.transitions:
            self.transitions += 1
            self._alarms.record(transition)
            if transition.notified:
                self._bus.publish(
                    subjects.ALARM_TRANSITIONS,
                    Event(
                        type="opendrs.alarm.transition",
                        source="opendrs.cep",
                        time=transition.time,
                        subject=transition.entity,
                        data=codec.transition_to_dict(transition),
                    ),
                )
        for produced in output.events:
            self.events += 1
            self._bus.publish(subjects.AUDIT_REQUESTS, produced)
