"""A worker that consumes a role's sample partitions on any Bus: it sends
heartbeats, listens to its peers', and subscribes to exactly the partitions
PartitionOwnership says it holds (see bus/ownership.py for the rules).

The owner calls `tick()` every `interval` seconds of its Clock (the server's
loop does; tests call it on manual time). Each held partition is consumed in
the durable group `<role>-p<n>`, so a partition taken over resumes where its
previous holder stopped acknowledging (on NATS and RabbitMQ). A single worker
on the in-memory bus should pass `warmup=0`: that bus keeps nothing for a group
without members."""

from __future__ import annotations

import logging
import threading

from opendrs.bus import subjects
from opendrs.bus.ownership import PartitionOwnership
from opendrs.bus.partitioning import PartitionRange, partition_group
from opendrs.domain.clock import Clock
from opendrs.domain.errors import InvalidInput
from opendrs.domain.event import Event
from opendrs.domain.ports import Bus, Handler, Subscription

log = logging.getLogger(__name__)

HEARTBEAT_TYPE = "opendrs.worker.heartbeat"


class PartitionWorker:
    def __init__(
        self,
        bus: Bus,
        *,
        role: str,
        worker: str,
        home: PartitionRange,
        partitions: int,
        handler: Handler,
        clock: Clock,
        interval: float = 5.0,
        lease: float | None = None,
        warmup: float | None = None,
    ) -> None:
        if interval <= 0:
            raise InvalidInput(f"the heartbeat interval must be > 0, got {interval}")
        self.role = role
        self._bus = bus
        self._handler = handler
        self._clock = clock
        self.ownership = PartitionOwnership(
            worker,
            home,
            partitions,
            clock=clock,
            lease=lease if lease is not None else 3 * interval,
            # two intervals: whatever their phase, every peer has beaten once meanwhile
            warmup=warmup if warmup is not None else 2 * interval,
        )
        self._lock = threading.Lock()  # the ownership view, fed by the heartbeat handler
        self._ticking = threading.Lock()  # one tick at a time; guards the subscriptions
        self._consuming: dict[int, Subscription] = {}
        self._listening: Subscription | None = None

    @property
    def worker(self) -> str:
        return self.ownership.worker

    @property
    def consuming(self) -> frozenset[int]:
        return frozenset(self._consuming)

    def start(self) -> None:
        self._listening = self._bus.subscribe(subjects.heartbeats(self.role), self._on_heartbeat)
        self.tick()

    def tick(self) -> None:
        """Decide, subscribe and unsubscribe to match, then tell the peers."""
        with self._ticking:  # the bus calls below may wait on the heartbeat handler
            with self._lock:
                wanted = self.ownership.decide()
            for partition in sorted(set(self._consuming) - wanted):
                self._consuming.pop(partition).close()
                log.info("%s: released partition %d", self.worker, partition)
            for partition in sorted(wanted - set(self._consuming)):
                self._consuming[partition] = self._bus.subscribe(
                    subjects.samples(partition),
                    self._handler,
                    group=partition_group(self.role, partition),
                )
                log.info("%s: consuming partition %d", self.worker, partition)
            beat = self._heartbeat(sorted(self._consuming))
        self._bus.publish(subjects.heartbeats(self.role), beat)

    def stop(self) -> None:
        """Let every partition go (a peer takes them over once our lease runs out)."""
        with self._ticking:
            for sub in self._consuming.values():
                sub.close()
            self._consuming.clear()
            if self._listening is not None:
                self._listening.close()
                self._listening = None

    def _heartbeat(self, holding: list[int]) -> Event:
        return Event(
            type=HEARTBEAT_TYPE,
            source=f"{self.role}/{self.worker}",
            subject=self.worker,
            time=self._clock.now(),
            data={
                "worker": self.worker,
                "home": str(self.ownership.home),
                "holding": holding,
                "partitions": self.ownership.partitions,
            },
        )

    def _on_heartbeat(self, event: Event) -> None:
        data = event.data
        try:
            worker = str(data["worker"])
            home = PartitionRange.parse(str(data["home"]))
            holding = [int(p) for p in data.get("holding", [])]
            partitions = int(data["partitions"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(
                f"bad heartbeat: {exc!r}", source=event.source, field="data"
            ) from exc
        if partitions != self.ownership.partitions:
            raise InvalidInput(
                f"{worker} counts {partitions} partitions, we count "
                f"{self.ownership.partitions}: fix the configuration",
                source=event.source,
                field="data.partitions",
            )
        with self._lock:
            self.ownership.heard(worker, home, holding)
