"""Publishing an agent's polls on the bus: samples as one batch event per
partition on `samples.<partition>`, alarm transitions on `alarms.agent`. While
the bus is unreachable the events wait in a bounded spool (on disk when
configured) and are replayed in order when it returns."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from opendrs.agent.batch import ColumnLayout, columns_of
from opendrs.agent.plugin import PollResult, QuietHooks
from opendrs.agent.spool import MemorySpool, Spool
from opendrs.bus import codec, subjects
from opendrs.bus.partitioning import partition_of
from opendrs.domain.event import Event
from opendrs.domain.ports import Bus

log = logging.getLogger(__name__)

TRANSITION_EVENT = "opendrs.alarm.transition"
DROPPED_EVENT = "opendrs.agent.buffer.dropped"
AGENT_STATUS = "agents.status"


class PublisherPlugin(QuietHooks):
    """Sends each poll's samples, partitioned by entity so that one entity always
    reaches the same consumer, and the poll's alarm transitions.

    A failed publish never raises (that would get the plugin disabled while the
    bus is down): the event and every later one go to `spool`, oldest first,
    until a replay at a later poll empties it. Events dropped past the spool's
    bound are counted in `dropped`, logged, and announced on `agents.status`
    once the bus is back.
    """

    name = "publisher"

    def __init__(
        self, bus: Bus, partitions: int, source: str, *, spool: Spool | None = None
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        self._bus = bus
        self._partitions = partitions
        self.source = source
        self.spool: Spool = spool if spool is not None else MemorySpool()
        self.events_published = 0
        self.samples_published = 0
        self.events_buffered = 0
        self.events_replayed = 0
        self._dropped_reported = self.spool.dropped
        # the last layout of samples, and how its rows go out (see _partitioned)
        self._parts: (
            tuple[ColumnLayout, list[tuple[str, npt.NDArray[np.intp], dict[str, Any]]]] | None
        ) = None

    @property
    def dropped(self) -> int:
        """Events lost past the spool's bound since it was opened."""
        return self.spool.dropped

    def on_poll_done(self, result: PollResult) -> None:
        up = self.replay()
        for subject, event, count in self._events(result):
            if up:
                try:
                    self._bus.publish(subject, event)
                except Exception as exc:
                    log.warning(
                        "bus unreachable (%s on %s: %s); buffering", event.type, subject, exc
                    )
                    up = False
                else:
                    self.events_published += 1
                    self.samples_published += count
                    continue
            self._buffer(subject, event)
        if up:
            self._report_drops(result.time)

    def replay(self) -> bool:
        """Send what the spool holds, oldest first; False if the bus failed again."""
        spool = self.spool
        if not len(spool):
            return True
        sent = 0
        try:
            while True:
                found = spool.peek()
                if found is None:
                    break
                subject, payload = found
                try:
                    event = codec.decode(payload, source="publisher buffer")
                except Exception:
                    log.exception("unreadable event in the buffer; skipped")
                    spool.pop()
                    continue
                try:
                    self._bus.publish(subject, event)
                except Exception as exc:
                    log.info("bus still unreachable after %d replayed events: %s", sent, exc)
                    return False
                spool.pop()
                sent += 1
                self.events_replayed += 1
                self.events_published += 1
        finally:
            spool.commit()
        if sent:
            log.warning("bus is back: replayed %d buffered events", sent)
        return True

    def _events(self, result: PollResult) -> list[tuple[str, Event, int]]:
        columns = columns_of(result.samples)
        parts = self._parts
        if parts is None or parts[0] is not columns.layout:
            parts = self._parts = (columns.layout, self._partitioned(columns.layout))
        values, times = columns.values, columns.times
        events = [
            (
                subject,
                codec.measured_event(
                    fixed,
                    values[rows].tolist(),
                    times[rows].tolist(),
                    source=self.source,
                    time=result.time,
                ),
                len(rows),
            )
            for subject, rows, fixed in parts[1]
        ]
        for transition in result.transitions:
            event = Event(
                type=TRANSITION_EVENT,
                source=self.source,
                time=transition.time,
                subject=transition.entity,
                data=codec.transition_to_dict(transition),
            )
            events.append((subjects.AGENT_ALARMS, event, 0))
        return events

    def _partitioned(
        self, layout: ColumnLayout
    ) -> list[tuple[str, npt.NDArray[np.intp], dict[str, Any]]]:
        """Per partition with samples, in order: its subject, its rows (an entity's
        partition decides, so that one entity always reaches the same consumer)
        and the fixed part of its events."""
        partitions = self._partitions
        by_entity: dict[str, int] = {}
        for entity in layout.entities:
            if entity not in by_entity:
                by_entity[entity] = partition_of(entity, partitions)
        owner = np.array([by_entity[e] for e in layout.entities], dtype=np.intp)
        out = []
        for partition in sorted(set(by_entity.values())):
            rows = np.flatnonzero(owner == partition)
            at = rows.tolist()
            picked = [[column[i] for i in at] for column in layout.columns()]
            out.append((subjects.samples(partition), rows, codec.fixed_columns(*picked)))
        return out

    def _buffer(self, subject: str, event: Event) -> None:
        before = self.spool.dropped
        self.spool.put(subject, codec.encode(event))
        self.events_buffered += 1
        lost = self.spool.dropped - before
        if lost:
            log.error(
                "publisher buffer full: dropped %d oldest event(s) (%d in all)",
                lost,
                self.spool.dropped,
            )

    def _report_drops(self, time: float) -> None:
        lost = self.spool.dropped - self._dropped_reported
        if lost <= 0:
            return
        event = Event(
            type=DROPPED_EVENT,
            source=self.source,
            time=time,
            data={"dropped": lost, "dropped_total": self.spool.dropped},
        )
        try:
            self._bus.publish(AGENT_STATUS, event)
        except Exception:
            return  # told next time
        self._dropped_reported = self.spool.dropped
