"""overload_relief with the placement rules of examples/scenarios/overload.yaml:
never_migrate stays, anti-affinity holds, soft anti-affinity is preferred (or
held hard when soft rules may not bend), zone scopes and budgets apply."""

from pathlib import Path

from decision_builders import cores, node

from opendrs.decision.strategies.overload_relief import OverloadRelief
from opendrs.domain.cluster import Cluster
from opendrs.domain.instance import GroupPolicy, ServerGroup
from opendrs.domain.solution import Solution
from opendrs.scenario import load_scenario

SCENARIO = Path(__file__).parents[2] / "examples" / "scenarios" / "overload.yaml"


def relieve(cluster: Cluster, **parameters: object) -> Solution:
    return OverloadRelief.from_parameters(parameters).execute(cluster)


def test_the_example_is_relieved_within_the_rules() -> None:
    solution = relieve(load_scenario(SCENARIO))
    assert [(m.instance, m.destination) for m in solution.moves] == [("api-1", "cool-2")]
    assert "anti-affinity group api" in solution.moves[0].reason


def soft_cluster() -> Cluster:
    return Cluster.of(
        [node("hot", vcpus=10), node("peer", vcpus=10), node("lonely", vcpus=10)],
        [
            cores("job", "hot", 2.0, groups=("jobs",)),
            cores("load", "hot", 7.0, never_migrate=True),
            cores("mate", "peer", 1.0, groups=("jobs",)),
            cores("busy", "lonely", 3.0),
        ],
        [ServerGroup("jobs", GroupPolicy.SOFT_ANTI_AFFINITY)],
    )


def test_soft_anti_affinity_is_weighed_and_may_be_held_hard() -> None:
    cluster = soft_cluster()
    # The CPU weigher alone prefers "peer" (less loaded)...
    by_cpu = relieve(cluster, weights={"cpu_load": 1.0, "soft_anti_affinity": 0.0})
    assert [(m.instance, m.destination) for m in by_cpu.moves] == [("job", "peer")]
    # ...the soft anti-affinity weigher, weighted more, prefers "lonely".
    by_group = relieve(cluster, weights={"cpu_load": 1.0, "soft_anti_affinity": 2.0})
    assert [(m.instance, m.destination) for m in by_group.moves] == [("job", "lonely")]
    # Held hard, the soft rule rejects "peer" whatever the weights.
    strict = relieve(
        cluster,
        weights={"cpu_load": 1.0, "soft_anti_affinity": 0.0},
        soft_rules_may_bend=False,
    )
    assert [(m.instance, m.destination) for m in strict.moves] == [("job", "lonely")]
    assert "soft rules may not bend" in strict.moves[0].reason


def test_a_zone_scope_selects_the_hosts_relieved() -> None:
    cluster = load_scenario(SCENARIO)
    assert relieve(cluster, scope=["zone:az1"]).moves
    assert relieve(cluster, scope=["cool-1"]).moves == ()


def test_the_budget_holds_back_a_relief_that_costs_too_much() -> None:
    cluster = load_scenario(SCENARIO)
    solution = relieve(cluster, max_bytes_moved=1024 * 1024 * 1024)
    assert solution.moves == ()
    assert "not planned" in solution.explanations[0] and "bytes" in solution.explanations[0]


def test_recently_moved_instances_are_not_chosen() -> None:
    cluster = load_scenario(SCENARIO)
    solution = relieve(cluster, recently_moved=["api-1"])
    assert "api-1" not in {m.instance for m in solution.moves}
