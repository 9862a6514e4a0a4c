"""workload_balance on examples/scenarios/imbalance.yaml and small clusters: the
spread falls, each move gains at least min_gain, every instance moves at most
once, held instances stay, the ram metric works and a quiet cluster is explained."""

import statistics
from pathlib import Path

import pytest
from decision_builders import applied, cores, node, vm

from opendrs.decision.strategies.workload_balance import WorkloadBalance
from opendrs.domain.action import PlanLimits
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidInput
from opendrs.domain.solution import Solution
from opendrs.planner import build_plan
from opendrs.scenario import load_scenario

SCENARIO = Path(__file__).parents[2] / "examples" / "scenarios" / "imbalance.yaml"


def balance(cluster: Cluster, **parameters: object) -> Solution:
    solution = WorkloadBalance.from_parameters(parameters).execute(cluster)
    build_plan(solution, cluster, PlanLimits(), "audit", 0.0)
    return solution


def cpu_spread(cluster: Cluster) -> float:
    return statistics.pstdev(cluster.cpu_percent(h) for h in cluster.hosts)


def test_the_example_spreads_cpu_evenly_and_keeps_the_pin() -> None:
    cluster = load_scenario(SCENARIO)
    solution = balance(cluster)
    final = applied(cluster, [(m.instance, m.destination) for m in solution.moves])
    before, after = cpu_spread(cluster), cpu_spread(final)
    assert after < before / 3
    assert solution.efficacy["standard_deviation_before_audit"] == pytest.approx(before)
    assert solution.efficacy["standard_deviation_after_audit"] == pytest.approx(after)
    assert final.hosts[final.instances["svc-4"].host].availability_zone == "az1"
    names = [m.instance for m in solution.moves]
    assert len(names) == len(set(names))  # never A→B→A, never twice
    assert all("squared deviations" in m.reason for m in solution.moves)


def test_min_gain_stops_small_moves() -> None:
    cluster = Cluster.of(
        [node("a", vcpus=10), node("b", vcpus=10)], [cores("x", "a", 6.0), cores("y", "b", 5.0)]
    )
    # Moving anything only swaps the imbalance: nothing gains.
    assert balance(cluster).moves == ()
    uneven = Cluster.of(
        [node("a", vcpus=10), node("b", vcpus=10)],
        [cores("x", "a", 3.0), cores("y", "a", 1.0), cores("z", "b", 2.0)],
    )
    # y (1 core = 10 points from 40% to 20%) gains 200 squared points.
    assert [m.instance for m in balance(uneven).moves] == ["y"]
    solution = balance(uneven, min_gain=250)
    assert solution.moves == ()
    assert "no move proposed" in solution.explanations[0] and "250" in solution.explanations[0]


def test_recently_moved_instances_are_left_alone() -> None:
    uneven = Cluster.of(
        [node("a", vcpus=10), node("b", vcpus=10)],
        [cores("x", "a", 3.0), cores("y", "a", 1.0), cores("z", "b", 2.0)],
    )
    solution = balance(uneven, recently_moved=["y"])
    assert "y" not in {m.instance for m in solution.moves}


def test_the_ram_metric_uses_measured_memory() -> None:
    cluster = Cluster.of(
        [node("a", memory_mb=10000), node("b", memory_mb=10000)],
        [
            vm("x", "a", memory_mb=4096, cpu=0),
            vm("y", "a", memory_mb=4096, cpu=0),
            vm("z", "b", memory_mb=512, cpu=0),
        ],
    )
    solution = balance(cluster, metric="ram")
    assert len(solution.moves) == 1 and solution.moves[0].destination == "b"
    assert balance(cluster, metric="cpu").moves == ()


def test_budget_caps_the_moves() -> None:
    cluster = load_scenario(SCENARIO)
    assert len(balance(cluster, max_migrations=2).moves) == 2


def test_hard_rules_hold() -> None:
    cluster = Cluster.of(
        [node("a", vcpus=10), node("b", vcpus=10)],
        [
            cores("x", "a", 3.0, groups=("g",)),
            cores("y", "a", 3.0),
            cores("p", "b", 0.1, groups=("g",)),
        ],
    )
    from opendrs.domain.instance import GroupPolicy, ServerGroup

    cluster = Cluster.of(
        cluster.hosts.values(),
        cluster.instances.values(),
        [ServerGroup("g", GroupPolicy.ANTI_AFFINITY)],
    )
    solution = balance(cluster)
    assert [m.instance for m in solution.moves] == ["y"]


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"metric": "io"}, "parameters.metric"),
        ({"min_gain": -1}, "parameters.min_gain"),
        ({"sources": 0}, "parameters.sources"),
    ],
)
def test_bad_parameters_are_named(parameters: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        WorkloadBalance.from_parameters(parameters)
    assert caught.value.field == field
