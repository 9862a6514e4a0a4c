"""The cluster the simulator hands the planner, made from its caches of domain
objects, equals one built plainly from the data centre's state at every round, and
the collector's pause during a run is lifted afterwards."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from opendrs.cloud.sim.cloudsim.engine import CLOUDSIM, DataCentre
from opendrs.cloud.sim.cloudsim.hardware import HOST_RAM_MB, build_fleet
from opendrs.domain.cluster import Cluster
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Flavor, Instance
from opendrs.domain.solution import Solution
from opendrs.services import simulation


def plain_cluster(centre: DataCentre, solution: Solution) -> Cluster:
    fleet = centre.fleet
    names = {m.source for m in solution.moves} | {m.destination for m in solution.moves}
    names |= {c.host for c in solution.host_changes}
    index = sorted(centre.host_index(n) for n in names)
    hosts = [
        Host(
            name=fleet.host_names[h],
            vcpus=2,
            memory_mb=int(HOST_RAM_MB),
            cpu_allocation_ratio=1_000_000.0,
            ram_allocation_ratio=1.0 if centre.profile.reserve_memory else 1_000_000.0,
            state=(
                HostState.ENABLED
                if not centre.profile.explicit_power or centre.host_on[h]
                else HostState.OFF
            ),
        )
        for h in index
    ]
    instances = [
        Instance(
            fleet.vm_names[v],
            fleet.host_names[int(centre.vm_host[v])],
            Flavor(f"cloudsim.{int(fleet.vm_memory_mb[v])}", 1, int(fleet.vm_memory_mb[v])),
        )
        for v in range(fleet.vms)
        if centre.vm_alive[v] and int(centre.vm_host[v]) in index
    ]
    return Cluster.of(hosts, instances)


@pytest.mark.parametrize(
    ("policy", "profile", "rounds"),
    # Realistic: one round of moves at the first decision, with powered-off hosts.
    [("thr-mmt-0.8", "cloudsim", 5), ("lr-mmt-1.2", "realistic", 1)],
)
def test_each_rounds_cluster_is_the_plainly_built_one(
    policy: str, profile: str, rounds: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = simulation._cluster_for
    compared: list[int] = []

    def checked(
        centre: DataCentre, solution: Solution, inventory: simulation._Inventory
    ) -> Cluster:
        cluster = made(centre, solution, inventory)
        plain = plain_cluster(centre, solution)
        assert cluster == plain
        assert list(cluster.instances) == list(plain.instances)
        assert list(cluster.hosts) == list(plain.hosts)
        compared.append(len(cluster.instances))
        return cluster

    monkeypatch.setattr(simulation, "_cluster_for", checked)
    simulation.simulate_day("20110303", policy, profile, hosts=40, vms=80, steps=40)
    # Enough rounds with moves that VMs are asked for again on new hosts.
    assert len(compared) >= rounds and sum(compared) > 0


def test_inventory_follows_vms_that_move_and_come_back() -> None:
    fleet = build_fleet(2, ("a", "b", "c"))
    centre = DataCentre(fleet, np.zeros((3, 4)), CLOUDSIM)
    ram = dict(zip("abc", fleet.vm_memory_mb.astype(int).tolist(), strict=True))
    inventory = simulation._Inventory()

    def asked(vms: list[int], hosts: list[int]) -> dict[str, tuple[str, int]]:
        found = inventory.instances(
            centre, np.array(vms, dtype=np.int64), np.array(hosts, dtype=np.int64)
        )
        return {n: (i.host, i.memory_mb) for n, i in found.items()}

    h0, h1 = fleet.host_names
    assert asked([0, 1, 2], [0, 0, 1]) == {
        "a": (h0, ram["a"]),
        "b": (h0, ram["b"]),
        "c": (h1, ram["c"]),
    }
    assert asked([1], [1]) == {"b": (h1, ram["b"])}
    assert asked([2, 0], [0, 0]) == {"c": (h0, ram["c"]), "a": (h0, ram["a"])}
    assert asked([1, 2], [0, 1]) == {"b": (h0, ram["b"]), "c": (h1, ram["c"])}
    assert asked([], []) == {}


def test_a_run_leaves_the_collector_as_it_found_it() -> None:
    frozen = gc.get_freeze_count()
    simulation.simulate_day("20110303", "thr-mmt-0.8", "cloudsim", hosts=10, vms=20, steps=3)
    assert gc.get_freeze_count() == frozen
