"""Partition ownership: every partition has one holder among the live workers,
a silent worker's partitions are taken over, and handed back without overlap."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendrs.bus.ownership import PartitionOwnership
from opendrs.bus.partitioning import PartitionRange
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import InvalidInput

P = 8
LEASE = 15.0


class Cluster:
    """Workers that hear each other's heartbeats once per round, on one manual clock;
    a round is one heartbeat interval, and the warm-up lasts one round."""

    def __init__(self, homes: dict[str, PartitionRange], warmup: float = LEASE / 3) -> None:
        self.clock = ManualClock(1000.0)
        self.warmup = warmup
        self.workers: dict[str, PartitionOwnership] = {}
        self.alive: set[str] = set()
        for name, home in homes.items():
            self.start(name, home)

    def start(self, name: str, home: PartitionRange) -> None:
        self.workers[name] = PartitionOwnership(
            name, home, P, clock=self.clock, lease=LEASE, warmup=self.warmup
        )
        self.alive.add(name)

    def round(self) -> dict[str, frozenset[int]]:
        """Everyone alive decides, then everyone alive hears everyone's heartbeat."""
        held = {name: self.workers[name].decide() for name in sorted(self.alive)}
        for listener in self.alive:
            for name, holding in held.items():
                self.workers[listener].heard(name, self.workers[name].home, holding)
        self.clock.advance(LEASE / 3)
        return held

    def settle(self, rounds: int = 6) -> dict[str, frozenset[int]]:
        held: dict[str, frozenset[int]] = {}
        for _ in range(rounds):
            held = self.round()
            assert_disjoint(held)
        return held


def assert_disjoint(held: dict[str, frozenset[int]]) -> None:
    seen: set[int] = set()
    for holding in held.values():
        assert not seen & holding, f"a partition is held twice: {held}"
        seen |= holding


def covered(held: dict[str, frozenset[int]]) -> set[int]:
    return set().union(*held.values()) if held else set()


def test_each_worker_holds_its_home() -> None:
    cluster = Cluster({"a": PartitionRange(0, 3), "b": PartitionRange(4, 7)})
    held = cluster.settle()
    assert held == {"a": frozenset(range(4)), "b": frozenset(range(4, 8))}


def test_a_silent_worker_is_taken_over_then_handed_back() -> None:
    cluster = Cluster({"a": PartitionRange(0, 3), "b": PartitionRange(4, 7)})
    cluster.settle()
    cluster.alive.discard("a")  # a dies: no more heartbeats
    held = cluster.round()
    assert held == {"b": frozenset(range(4, 8))}  # still within a's lease
    held = cluster.settle()  # the survivors keep beating while a's lease runs out
    assert held == {"b": frozenset(range(8))}

    cluster.start("a", PartitionRange(0, 3))  # a comes back
    first = cluster.round()
    assert first["a"] == frozenset()  # b still holds them: a waits
    held = cluster.settle()
    assert held == {"a": frozenset(range(4)), "b": frozenset(range(4, 8))}


def test_orphans_are_shared_between_the_survivors() -> None:
    homes = {"a": PartitionRange(0, 3), "b": PartitionRange(4, 5), "c": PartitionRange(6, 7)}
    cluster = Cluster(homes)
    cluster.settle()
    cluster.alive.discard("a")
    held = cluster.settle()
    assert covered(held) == set(range(P))
    assert held["b"] >= {4, 5} and held["c"] >= {6, 7}
    assert held["b"] - {4, 5} and held["c"] - {6, 7}  # CRC-32 happens to split 0-3


def test_partitions_nobody_has_at_home_get_a_stand_in() -> None:
    cluster = Cluster({"a": PartitionRange(0, 1)})
    assert cluster.settle() == {"a": frozenset(range(P))}


def test_nothing_is_held_during_the_warm_up() -> None:
    cluster = Cluster({"a": PartitionRange(0, 7)}, warmup=5.0)
    assert cluster.workers["a"].decide() == frozenset()
    cluster.clock.advance(5.0)
    assert cluster.workers["a"].decide() == frozenset(range(P))


def test_bad_settings_are_refused() -> None:
    clock = ManualClock()
    with pytest.raises(InvalidInput, match="partition 9"):
        PartitionOwnership("a", PartitionRange(0, 9), P, clock=clock)
    with pytest.raises(InvalidInput, match="lease"):
        PartitionOwnership("a", PartitionRange(0, 1), P, clock=clock, lease=0)
    with pytest.raises(InvalidInput, match="name"):
        PartitionOwnership("", PartitionRange(0, 1), P, clock=clock)


ranges = st.tuples(st.integers(0, P - 1), st.integers(0, P - 1)).map(
    lambda t: PartitionRange(min(t), max(t))
)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.sampled_from("abcde"), ranges, min_size=1, max_size=5),
    st.data(),
)
def test_live_workers_always_cover_every_partition_once(
    homes: dict[str, PartitionRange], data: st.DataObject
) -> None:
    cluster = Cluster(homes)
    assert covered(cluster.settle()) == set(range(P))
    names = sorted(homes)
    dead = data.draw(st.sets(st.sampled_from(names), max_size=len(names) - 1))
    cluster.alive -= dead
    held = cluster.settle()
    assert covered(held) == set(range(P)) and set(held) == set(names) - dead
    for name in sorted(dead):
        cluster.start(name, homes[name])
    held = cluster.settle()
    assert covered(held) == set(range(P))
    for name, holding in held.items():
        mine = {p for p in range(P) if cluster.workers[name].rightful_owner(p) == name}
        assert holding == mine
