"""The planner's one pass over the instances gives each host's room before the plan
and each destination's room after it exactly as the plain definitions do: capacity
less the usage of the instances there, taken off in instance order."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes.scenarios import Scenario, scenarios
from opendrs.domain.cluster import Cluster
from opendrs.domain.host import Host
from opendrs.domain.instance import Flavor, Instance
from opendrs.domain.solution import Move
from opendrs.planner import _rooms, capacity, usage

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)


def plain_room(cluster: Cluster, host: str, where: dict[str, str]) -> tuple[float, float]:
    room = list(capacity(cluster.hosts[host]))
    for name, instance in cluster.instances.items():
        if where[name] == host:
            for d, amount in enumerate(usage(instance)):
                room[d] -= amount
    return room[0], room[1]


@given(scenarios())
@SETTINGS
def test_rooms_before_and_after_are_the_plain_sums(scenario: Scenario) -> None:
    cluster, moves = scenario.cluster, scenario.solution.moves
    before, after = _rooms(moves, cluster)
    start = {name: i.host for name, i in cluster.instances.items()}
    end = {**start, **{m.instance: m.destination for m in moves}}
    assert {h: tuple(r) for h, r in before.items()} == {
        h: plain_room(cluster, h, start) for h in cluster.hosts
    }
    assert after == {m.destination: plain_room(cluster, m.destination, end) for m in moves}


@given(
    st.lists(st.floats(1.0, 16.0), min_size=6, max_size=6),
    st.lists(
        st.tuples(st.integers(1, 4), st.integers(1, 4000), st.integers(0, 2)),
        min_size=1,
        max_size=12,
    ),
)
@settings(max_examples=100, deadline=None)
def test_rooms_with_fractional_capacities_keep_the_instance_order(
    ratios: list[float], vms: list[tuple[int, int, int]]
) -> None:
    """Sums taken off a fractional capacity depend on their order: the pass takes
    them off in instance order, as the plain definition does, so the rooms agree to
    the last bit."""
    hosts = [
        Host(
            name=f"h{i}",
            vcpus=64,
            memory_mb=65536,
            cpu_allocation_ratio=ratios[2 * i],
            ram_allocation_ratio=ratios[2 * i + 1],
        )
        for i in range(3)
    ]
    instances = [
        Instance(f"vm{i}", f"h{h}", Flavor(f"f{i}", vcpus, memory))
        for i, (vcpus, memory, h) in enumerate(vms)
    ]
    cluster = Cluster.of(hosts, instances)
    moves = tuple(Move(i.name, i.host, "h0" if i.host != "h0" else "h1") for i in instances[::2])
    before, after = _rooms(moves, cluster)
    start = {name: i.host for name, i in cluster.instances.items()}
    end = {**start, **{m.instance: m.destination for m in moves}}
    for h in cluster.hosts:
        assert tuple(before[h]) == plain_room(cluster, h, start)
    for m in moves:
        assert after[m.destination] == plain_room(cluster, m.destination, end)
