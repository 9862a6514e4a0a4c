"""Which partitions a worker consumes, decided from the heartbeats it hears:
its home range while it lives, a share of a silent peer's partitions when that
peer's lease runs out, handed back without overlap when the peer returns.

The rules, which every worker applies to the same view and so agrees on
without a coordinator:

- a worker is *live* while its last heartbeat is younger than the lease;
  a worker always counts itself live;
- the *rightful* owner of partition p is, among the live workers whose home
  holds p, the one with the highest rendezvous hash of (worker, p); when no
  live worker has p at home (its home worker went silent, or nobody was ever
  given it), the same hash over all live workers picks a stand-in, so the
  survivors split the orphans evenly;
- a worker *holds* p when it is p's rightful owner and no other live worker
  says in its heartbeat that it holds p; it lets p go as soon as it is no
  longer the rightful owner. So a returning home worker waits until the
  stand-in has released (one heartbeat later): a partition is never consumed
  by two workers at once, and while it has no holder its messages wait in its
  durable group (`partition_group(role, p)`), to be read by the next holder;
- a worker that has just started holds nothing during a warm-up (at least
  one full heartbeat interval) to hear who holds what first.

No coordinator means no fencing: a worker that stops hearing its peers for
longer than the lease (a long pause, a network split) believes it is alone and
takes everything until it hears them again; choose the lease well above the
longest pause expected (three heartbeat intervals by default).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from opendrs.bus.partitioning import PartitionRange
from opendrs.domain.clock import Clock
from opendrs.domain.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Peer:
    """What one worker last said about itself, and when we heard it (our clock)."""

    worker: str
    home: PartitionRange
    holding: frozenset[int]
    heard: float


def rendezvous(worker: str, partition: int) -> int:
    """Highest-random-weight score: stable across processes and Python versions."""
    return zlib.crc32(f"{worker}\0{partition}".encode())


class PartitionOwnership:
    """One worker's view of the partitions of its role."""

    def __init__(
        self,
        worker: str,
        home: PartitionRange,
        partitions: int,
        *,
        clock: Clock,
        lease: float = 15.0,
        warmup: float = 5.0,
    ) -> None:
        if not worker:
            raise InvalidInput("a worker needs a name", field="worker")
        if lease <= 0 or warmup < 0:
            raise InvalidInput(f"lease must be > 0 and warmup >= 0, got {lease}, {warmup}")
        home.check_within(partitions)
        self.worker = worker
        self.home = home
        self.partitions = partitions
        self.lease = lease
        self._clock = clock
        self._started = clock.now()
        self._warm_until = self._started + warmup
        self._peers: dict[str, Peer] = {}
        self._holding: frozenset[int] = frozenset()

    @property
    def holding(self) -> frozenset[int]:
        """The partitions this worker consumes now (as of the last `decide`)."""
        return self._holding

    def heard(self, worker: str, home: PartitionRange, holding: Iterable[int]) -> None:
        """Record a peer's heartbeat; our own heartbeats coming back are ignored."""
        if worker == self.worker:
            return
        home.check_within(self.partitions)
        held = frozenset(p for p in holding if 0 <= p < self.partitions)
        self._peers[worker] = Peer(worker, home, held, self._clock.now())

    def live_peers(self) -> list[Peer]:
        now = self._clock.now()
        return [p for p in self._peers.values() if now - p.heard < self.lease]

    def rightful_owner(self, partition: int) -> str:
        homes = {self.worker: self.home} | {p.worker: p.home for p in self.live_peers()}
        at_home = [w for w, home in homes.items() if partition in home]
        candidates = at_home or list(homes)
        return max(candidates, key=lambda w: (rendezvous(w, partition), w))

    def decide(self) -> frozenset[int]:
        """Work out what to hold now; the caller subscribes and unsubscribes to match."""
        if self._clock.now() < self._warm_until:
            self._holding = frozenset()
            return self._holding
        held_by_others: set[int] = set()
        for peer in self.live_peers():
            held_by_others |= peer.holding
        self._holding = frozenset(
            p
            for p in range(self.partitions)
            if self.rightful_owner(p) == self.worker
            and (p in self._holding or p not in held_by_others)
        )
        return self._holding
