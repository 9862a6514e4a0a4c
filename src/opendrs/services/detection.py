"""The CEP stage as a service: samples and agent watermark transitions go into
the rule engine; alarm transitions are recorded and published, notifications go
through the dispatcher, rule actions become events on the bus (an overload
becomes an audit request), and the engine's state is saved after every batch so
a restart resumes it without re-notifying or falsely clearing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

from opendrs.bus import codec, subjects
from opendrs.bus.partitioning import partition_group, partition_of
from opendrs.cep.engine import CepEngine, CepOutput
from opendrs.cep.handoff import News, news_from_dict, news_to_dict, placement
from opendrs.cep.rule import ThresholdRule
from opendrs.domain.alarm import AlarmState, AlarmTransition
from opendrs.domain.clock import Clock, WallClock
from opendrs.domain.errors import InvalidInput
from opendrs.domain.event import Event
from opendrs.domain.ports import AlarmRepository, Bus, CepStateRepository, Subscription
from opendrs.domain.sample import EntityKind, Sample, SampleType
from opendrs.notify.dispatcher import Dispatcher

log = logging.getLogger(__name__)

WATERMARK_METER_PREFIX = "watermark."
HANDOFF_TYPE = "opendrs.cep.handoff"
# The durable group of partition p's handoffs is `cep-handoff-p<p>`.
HANDOFF_ROLE = "cep-handoff"
# Published by whoever sees an instance or host disappear; data {"entity": name}.
ENTITY_DELETED = subjects.INVENTORY_DELETED


def watermark_sample(transition: AlarmTransition) -> Sample:
    """An agent's watermark transition as a 0/1 gauge the CEP rules can use."""
    host = transition.labels.get("host", "")
    kind = EntityKind.HOST if host in ("", transition.entity) else EntityKind.INSTANCE
    extra = {k: v for k, v in transition.labels.items() if k not in ("host", "instance", "meter")}
    return Sample(
        meter=f"{WATERMARK_METER_PREFIX}{transition.rule}",
        entity=transition.entity,
        value=1.0 if transition.current == AlarmState.ALARM else 0.0,
        unit="bool",
        type=SampleType.GAUGE,
        time=transition.time,
        kind=kind,
        host=host or transition.entity,
        labels=extra,
    )


class Detection:
    """`consume=False` leaves the sample subscriptions to the caller (a
    PartitionWorker hands its partitions' events to `on_samples`), which tells
    it what it holds with `hold`. Such a worker judges the groups and pattern
    keys placed in its partitions: it hands the others' members and halves to
    their holders on `cep.handoff.<partition>` and takes theirs from there."""

    def __init__(
        self,
        bus: Bus,
        engine: CepEngine,
        alarms: AlarmRepository,
        *,
        clock: Clock | None = None,
        state: CepStateRepository | None = None,
        dispatcher: Dispatcher | None = None,
        consume: bool = True,
    ) -> None:
        self._bus = bus
        self._engine = engine
        self._alarms = alarms
        self._clock: Clock = clock or WallClock()
        self._state = state
        self._dispatcher = dispatcher
        self._consume = consume
        self._lock = threading.RLock()
        self._subscriptions: list[Subscription] = []
        self._unsaved: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._unremoved: set[tuple[str, str]] = set()
        self._held: frozenset[int] | None = None
        self._partition_count = 1
        self._handoffs: dict[int, Subscription] = {}
        self.transitions = 0
        self.events = 0
        self.failures = 0

    @property
    def engine(self) -> CepEngine:
        return self._engine

    def start(self) -> None:
        if self._state is not None and self._consume:
            with self._lock:
                restored = self._engine.restore(self._state.load_cep_state())
            log.info("restored the state of %d alarm series", restored)
        if self._consume:
            self._subscriptions.append(
                self._bus.subscribe(f"{subjects.SAMPLES}.>", self.on_samples, "cep")
            )
        # A worker holding some partitions hears every agent alarm and deletion and
        # keeps those of its partitions; a single process shares the group "cep".
        group = "cep" if self._consume else ""
        self._subscriptions += [
            self._bus.subscribe(subjects.AGENT_ALARMS, self.on_agent_alarm, group),
            self._bus.subscribe(ENTITY_DELETED, self.on_entity_deleted, group),
        ]

    def stop(self) -> None:
        for sub in [*self._subscriptions, *self._handoffs.values()]:
            sub.close()
        self._subscriptions = []
        self._handoffs = {}

    # --- inputs -----------------------------------------------------------

    def on_samples(self, event: Event) -> None:
        samples = codec.samples_of(event)
        with self._lock:
            self._handle(self._engine.process(samples))

    def on_agent_alarm(self, event: Event) -> None:
        transition = codec.transition_from_dict(event.data, source=event.source)
        held = self._held
        if held is not None and partition_of(transition.entity, self._partition_count) not in held:
            return  # another worker's entity
        self._guarded("record", lambda: self._alarms.record(transition))
        with self._lock:
            self._handle(self._engine.process([watermark_sample(transition)]))

    def on_handoff(self, event: Event) -> None:
        """Members' news and pattern halves another worker handed to this one
        (news for a partition no longer held here goes on to its holder)."""
        news = news_from_dict(event.data)
        with self._lock:
            mine = [n for n in news if self._judged_here(n.place)]
            if len(mine) < len(news):
                self._hand_over([n for n in news if not self._judged_here(n.place)])
            self._handle(self._engine.absorb(mine))

    def on_entity_deleted(self, event: Event) -> None:
        entity = event.data.get("entity") or event.subject
        if not isinstance(entity, str) or not entity:
            raise InvalidInput("a deletion names its entity", source=event.source, field="data")
        with self._lock:
            self._handle(self._engine.retire(entity, event.time))

    def hold(self, partitions: Iterable[int], count: int) -> None:
        """Evaluate only the series of these partitions (of `count`): a worker's
        share. Newly held partitions get their saved state back; released ones
        are forgotten here (their state stays saved for the next holder)."""
        wanted = frozenset(partitions)
        # Stop taking news for released partitions first (outside the lock: a
        # subscription may wait for the transport, whose handlers wait for the
        # lock): what is not yet absorbed goes back to the partition's group for
        # the next holder, and what was is in the state saved below.
        for partition in sorted(set(self._handoffs) - wanted):
            self._handoffs.pop(partition).close()
        with self._lock:
            previous = self._held
            self._held = wanted
            self._partition_count = count
            if previous is None:
                self._engine.spread(self._judged_here)
            if previous is not None and previous - wanted:
                released = previous - wanted
                self._save()
                self._engine.forget(lambda labels: self._partition(labels) in released)
            gained = wanted - (previous or frozenset())
            if gained and self._state is not None:
                restored = self._engine.restore(
                    self._state.load_cep_state(),
                    keep=lambda labels: self._partition(labels) in gained,
                )
                log.info("partitions %s: restored %d alarm series", sorted(gained), restored)
        for partition in sorted(wanted - set(self._handoffs)):
            self._handoffs[partition] = self._bus.subscribe(
                subjects.cep_handoff(partition),
                self.on_handoff,
                group=partition_group(HANDOFF_ROLE, partition),
            )

    def _partition(self, labels: Mapping[str, str]) -> int:
        """Where a series, a group or a pattern's key is judged."""
        return partition_of(placement(labels), self._partition_count)

    def _judged_here(self, place: str) -> bool:
        held = self._held
        return held is None or partition_of(place, self._partition_count) in held

    def tick(self) -> None:
        """Let time pass (call it every few seconds): silent series go to no_data
        (or breach, per rule) and calmed flapping alarms settle."""
        with self._lock:
            self._handle(self._engine.advance(self._clock.now()))

    def reload(self, rules: Iterable[ThresholdRule]) -> None:
        """Swap the rules atomically: on error the running rules stay, and kept
        rules keep their series' state (a threshold edit resets nothing)."""
        with self._lock:
            self._engine.set_rules(list(rules))
            self._save()

    # --- outputs ----------------------------------------------------------

    def _handle(self, output: CepOutput) -> None:
        for transition in output.transitions:
            self.transitions += 1
            self._guarded("record", partial(self._alarms.record, transition))
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
        for line in output.log_lines:
            log.warning("%s", line)
        for produced in output.events:
            self.events += 1
            self._bus.publish(subjects.AUDIT_REQUESTS, produced)
        if output.handoffs:
            self._hand_over(output.handoffs)
        dispatcher = self._dispatcher
        if dispatcher is not None and output.transitions:
            self._guarded(
                "dispatch", lambda: dispatcher.dispatch(output.transitions, output.deliveries)
            )
        self._save()

    def _hand_over(self, handoffs: Iterable[News]) -> None:
        """One event per partition whose holder judges some of this news."""
        by_partition: dict[int, list[News]] = {}
        for news in handoffs:
            by_partition.setdefault(partition_of(news.place, self._partition_count), []).append(
                news
            )
        for partition, found in sorted(by_partition.items()):
            event = Event(
                type=HANDOFF_TYPE,
                source="opendrs.cep",
                time=self._clock.now(),
                subject=str(partition),
                data=news_to_dict(found),
            )
            self._guarded(
                "hand over", partial(self._bus.publish, subjects.cep_handoff(partition), event)
            )

    def _save(self) -> None:
        state = self._state
        if state is None:
            return
        changed, removed = self._engine.changes()
        for entry in changed:
            key = (str(entry["rule"]), str(entry["entity"]))
            self._unsaved[key] = entry
            self._unremoved.discard(key)
        for key in removed:
            self._unsaved.pop(key, None)
            self._unremoved.add(key)
        if not self._unsaved and not self._unremoved:
            return
        try:
            state.save_cep_state(list(self._unsaved.values()), sorted(self._unremoved))
        except Exception:
            self.failures += 1
            log.exception("saving the CEP state failed; will retry with the next batch")
            return
        self._unsaved.clear()
        self._unremoved.clear()

    def _guarded(self, what: str, call: Callable[[], object]) -> None:
        try:
            call()
        except Exception:
            self.failures += 1
            log.exception("%s failed; carrying on", what)
