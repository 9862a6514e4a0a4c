"""Publishing an agent's polls on the bus: samples as one batch event per
partition on `samples.<partition>`, alarm transitions on `alarms.agent`."""

from __future__ import annotations

import logging
from collections import defaultdict

from opendrs.agent.plugin import PollResult, QuietHooks
from opendrs.bus import codec, subjects
from opendrs.bus.partitioning import partition_of
from opendrs.domain.event import Event
from opendrs.domain.ports import Bus
from opendrs.domain.sample import Sample

log = logging.getLogger(__name__)

TRANSITION_EVENT = "opendrs.alarm.transition"


class PublisherPlugin(QuietHooks):
    """Sends each poll's samples, partitioned by entity so that one entity always
    reaches the same consumer, and the poll's alarm transitions.

    Every publish is attempted even if one fails; the first failure is then raised
    so the pipeline counts it.
    """

    name = "publisher"

    def __init__(self, bus: Bus, partitions: int, source: str) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        self._bus = bus
        self._partitions = partitions
        self.source = source
        self.events_published = 0
        self.samples_published = 0

    def on_poll_done(self, result: PollResult) -> None:
        batches: dict[int, list[Sample]] = defaultdict(list)
        for sample in result.samples:
            batches[partition_of(sample.entity, self._partitions)].append(sample)
        failures: list[Exception] = []
        for partition in sorted(batches):
            batch = batches[partition]
            event = codec.samples_event(batch, source=self.source, time=result.time)
            if self._publish(subjects.samples(partition), event, failures):
                self.samples_published += len(batch)
        for transition in result.transitions:
            event = Event(
                type=TRANSITION_EVENT,
                source=self.source,
                time=transition.time,
                subject=transition.entity,
                data=codec.transition_to_dict(transition),
            )
            self._publish(subjects.AGENT_ALARMS, event, failures)
        if failures:
            raise failures[0]

    def _publish(self, subject: str, event: Event, failures: list[Exception]) -> bool:
        try:
            self._bus.publish(subject, event)
        except Exception as exc:
            log.warning("publishing %s on %s failed: %s", event.type, subject, exc)
            failures.append(exc)
            return False
        self.events_published += 1
        return True
