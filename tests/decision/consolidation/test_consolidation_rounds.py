"""VM selection, PABFD and the CloudSim round; policy names and the strategy classes."""

from __future__ import annotations

import numpy as np
import pytest
from consolidation_builders import snapshot

from opendrs.decision.consolidation.detectors import Threshold
from opendrs.decision.consolidation.load import Load
from opendrs.decision.consolidation.placement import find_host, place_all
from opendrs.decision.consolidation.policies import (
    BeloglazovBuyya,
    StaticPlacement,
    parse_policy,
)
from opendrs.decision.consolidation.rounds import run_round
from opendrs.decision.consolidation.selection import (
    MaximumCorrelation,
    MinimumMigrationTime,
    MinimumUtilisation,
    RandomSelection,
)
from opendrs.decision.registry import StrategyRegistry
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidInput
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Flavor, Instance


def crowded() -> Load:
    vms = [(0, 1000.0, 500.0, 1740.0), (0, 1000.0, 100.0, 613.0), (0, 1000.0, 50.0, 613.0)]
    return Load(snapshot([2000.0, 2000.0], vms, [[0.5, 0.4], [0.1, 0.2], [0.05, 0.1]]))


def test_mmt_takes_the_least_memory_first_in_list_order_on_ties() -> None:
    assert MinimumMigrationTime().pick(crowded(), 0) == 1


def test_mu_takes_the_least_utilised() -> None:
    assert MinimumUtilisation().pick(crowded(), 0) == 2


def test_rs_is_repeatable_with_a_seed() -> None:
    picks = [RandomSelection(7).pick(crowded(), 0) for _ in range(3)]
    assert len(set(picks)) == 1 and picks[0] in (0, 1, 2)


def test_mc_falls_back_to_mmt_without_enough_history() -> None:
    assert MaximumCorrelation().pick(crowded(), 0) == 1


def test_selection_skips_migrating_vms_and_empty_hosts() -> None:
    assert MinimumMigrationTime().pick(crowded(), 1) is None


def test_pabfd_prefers_the_smallest_power_increase() -> None:
    # Waking the idle G5 adds P(0.07) − P(0) ≈ 2.3 W (its idle power never counts);
    # the G4 at 50 % would add P(0.6) − P(0.5) = 4 W.
    vms = [(0, 1000.0, 372.0, 512.0), (1, 2000.0, 1860.0, 512.0)]
    s = snapshot([3720.0, 3720.0, 5320.0], vms)
    load = Load(s)
    assert find_host(load, 0, np.array([True, False, False]), Threshold(0.8)) == 2
    assert find_host(load, 0, np.array([True, False, True]), Threshold(0.8)) == 1
    # A busy target the detector would flag with the VM added is skipped.
    assert find_host(load, 0, np.array([True, False, True]), Threshold(0.5)) == -1


def test_pabfd_requires_pe_room_for_the_demand() -> None:
    s = snapshot([3720.0, 5320.0], [(0, 2500.0, 2000.0, 870.0)])
    load = Load(s)
    assert find_host(load, 0, np.array([True, False]), Threshold(0.9)) == 1
    assert find_host(load, 0, np.array([False, True]), Threshold(0.9)) == -1


def test_initial_placement_spreads_over_idle_hosts() -> None:
    s = snapshot([3720.0, 5320.0, 3720.0, 5320.0], [(0, 1000.0, 1000.0, 870.0)] * 4)
    hosts = place_all(s, Threshold(0.8))
    assert sorted(hosts.tolist()) == [0, 1, 2, 3]


def test_round_relieves_overload_then_empties_the_least_used_host() -> None:
    vms = [
        (0, 2000.0, 1700.0, 1740.0),
        (0, 2000.0, 1500.0, 870.0),
        (1, 1000.0, 400.0, 613.0),
        (2, 1000.0, 900.0, 613.0),
    ]
    s = snapshot([3720.0, 3720.0, 3720.0, 5320.0], vms)
    result = run_round(s, Threshold(0.8), MinimumMigrationTime(), s.host_used_mips == 0)
    moved = {m.vm: (m.source, m.destination) for m in result.migrations}
    assert result.overloaded == 1
    assert moved[1][0] == 0  # the smaller-memory VM left the overloaded host
    assert 1 in result.emptied  # the least used host was emptied
    assert all(m.source != m.destination for m in result.migrations)
    assert len(moved) == len(result.migrations)  # one move per VM


def test_underload_is_all_or_nothing() -> None:
    vms = [(0, 2000.0, 1400.0, 870.0), (1, 2000.0, 1500.0, 870.0), (1, 1000.0, 500.0, 613.0)]
    s = snapshot([3720.0, 3720.0], vms)
    result = run_round(s, Threshold(0.8), MinimumMigrationTime(), s.host_used_mips == 0)
    assert result.migrations == ()


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("lr-mmt-1.2", {"detector": "lr", "selection": "mmt", "parameter": 1.2}),
        ("THR-MU-0.9", {"detector": "thr", "selection": "mu", "parameter": 0.9}),
        ("iqr-rs-1.5", {"detector": "iqr", "selection": "rs", "parameter": 1.5}),
    ],
)
def test_policy_names(policy: str, expected: dict[str, object]) -> None:
    assert parse_policy(policy) == ("beloglazov_buyya", expected)


def test_static_and_own_policy_names() -> None:
    assert parse_policy("dvfs")[0] == parse_policy("npa")[0] == StaticPlacement.name
    assert parse_policy("opendrs") == ("opendrs_consolidation", {})
    assert parse_policy("opendrs:window=4")[1] == {"window": "4"}


@pytest.mark.parametrize("bad", ["lr-xyz-1.2", "lr-mmt", "foo", "lr-mmt-abc", "opendrs:oops"])
def test_bad_policy_names_say_what_is_expected(bad: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_policy(bad)
    assert error.value.field == "policy"


def test_bad_parameters_are_named() -> None:
    with pytest.raises(InvalidInput) as error:
        BeloglazovBuyya.from_parameters({"detector": "lr", "parameter": -1})
    assert "parameter" in str(error.value)
    with pytest.raises(InvalidInput):
        BeloglazovBuyya.from_parameters({"selection": "zz"})


def test_strategies_register_under_the_consolidation_goal() -> None:
    registry = StrategyRegistry([BeloglazovBuyya, StaticPlacement])
    assert "beloglazov_buyya" in registry.goals()["server_consolidation"]
    created = registry.create("server_consolidation", "beloglazov_buyya", {"detector": "thr"})
    assert isinstance(created, BeloglazovBuyya)


def test_execute_on_a_domain_cluster() -> None:
    hosts = [Host(name=f"h{i}", vcpus=4, memory_mb=8192) for i in range(3)]
    flavor = Flavor("m1", 2, 2048)
    instances = [
        Instance(name="busy-a", host="h0", flavor=flavor, metrics={"cpu_util": 100.0}),
        Instance(name="busy-b", host="h0", flavor=flavor, metrics={"cpu_util": 90.0}),
        Instance(name="lonely", host="h1", flavor=flavor, metrics={"cpu_util": 10.0}),
    ]
    hosts[2] = Host(name="h2", vcpus=4, memory_mb=8192, state=HostState.DISABLED)
    solution = BeloglazovBuyya.from_parameters({"detector": "thr", "parameter": 0.8}).execute(
        Cluster.of(hosts, instances)
    )
    assert solution.moves
    assert all(m.destination != "h2" for m in solution.moves)  # disabled hosts take nothing
    assert solution.efficacy["overloaded_hosts"] == 1.0
