"""host_maintenance and host_return on examples/scenarios/maintenance.yaml: the
host goes into maintenance, the backup is enabled first, groups hold, stopped
instances move cold, the unmovable are reported with their reason."""

from dataclasses import replace
from pathlib import Path

import pytest
from decision_builders import node, vm

from opendrs.decision.strategies.host_maintenance import HostMaintenance, HostReturn
from opendrs.domain.action import PlanLimits
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidInput
from opendrs.domain.host import HostState
from opendrs.domain.solution import Solution
from opendrs.planner import build_plan
from opendrs.scenario import load_scenario

SCENARIO = Path(__file__).parents[2] / "examples" / "scenarios" / "maintenance.yaml"


@pytest.fixture
def cluster() -> Cluster:
    return load_scenario(SCENARIO)


def evacuate(cluster: Cluster, **parameters: object) -> Solution:
    solution = HostMaintenance.from_parameters(
        {"maintenance_node": "rack-a-1", **parameters}
    ).execute(cluster)
    build_plan(solution, cluster, PlanLimits(), "audit", 0.0)  # the planner accepts it
    return solution


def test_evacuation_to_best_destinations(cluster: Cluster) -> None:
    solution = evacuate(cluster)
    moved = {m.instance: m.destination for m in solution.moves}
    assert set(moved) == {"fe-1", "cache-1", "cache-2", "report-1", "zonal-1"}
    assert moved["cache-1"] == moved["cache-2"]  # the affinity pair stays together
    assert moved["fe-1"] != "rack-a-2"  # fe-2 is there (anti-affinity)
    assert moved["zonal-1"] != "far-1"  # pinned to az1
    assert "spare-1" not in moved.values()  # disabled, and no backup named
    assert solution.host_changes[0].host == "rack-a-1"
    assert solution.host_changes[0].state == HostState.MAINTENANCE
    cold = [m for m in solution.moves if not m.live]
    assert [m.instance for m in cold] == ["report-1"]
    assert "stopped" in cold[0].reason


def test_unmovable_instances_are_reported_with_the_reason(cluster: Cluster) -> None:
    solution = evacuate(cluster)
    assert solution.efficacy["unmovable_instances_count"] == 1.0
    assert any("licensed-1" in e and "never_migrate" in e for e in solution.explanations)


def test_a_disabled_backup_is_enabled_first_and_takes_everything(cluster: Cluster) -> None:
    solution = evacuate(cluster, backup_node="spare-1")
    assert {m.destination for m in solution.moves} == {"spare-1"}
    changes = [(c.host, c.state) for c in solution.host_changes]
    assert ("spare-1", HostState.ENABLED) in changes
    plan = build_plan(solution, cluster, PlanLimits(), "audit", 0.0)
    enable = next(a for a in plan.actions if a.parameters.get("node") == "spare-1")
    assert all(enable.id in a.parents for a in plan.actions if a.destination == "spare-1")


def test_backup_only_reports_what_the_backup_cannot_take() -> None:
    cluster = Cluster.of(
        [node("m"), node("small", vcpus=2), node("other")],
        [vm("big", "m", vcpus=4), vm("tiny", "m", vcpus=1)],
    )
    solution = HostMaintenance.from_parameters(
        {"maintenance_node": "m", "backup_node": "small", "backup_only": True}
    ).execute(cluster)
    assert [(m.instance, m.destination) for m in solution.moves] == [("tiny", "small")]
    assert any("big has no destination" in e and "vcpu" in e for e in solution.explanations)
    relaxed = HostMaintenance.from_parameters(
        {"maintenance_node": "m", "backup_node": "small"}
    ).execute(cluster)
    assert {m.instance: m.destination for m in relaxed.moves} == {"big": "other", "tiny": "small"}
    assert "backup small refused" in relaxed.moves[0].reason


def test_budget_limits_the_evacuation(cluster: Cluster) -> None:
    solution = evacuate(cluster, max_migrations=1)
    assert len(solution.moves) == 1
    assert any("at most 1 migration" in e for e in solution.explanations)


def test_recently_moved_instances_still_leave_a_host_in_maintenance(cluster: Cluster) -> None:
    solution = evacuate(cluster, recently_moved=["fe-1"])
    assert "fe-1" in {m.instance for m in solution.moves}


def test_an_empty_host_only_changes_state() -> None:
    cluster = Cluster.of([node("m"), node("o")], [])
    solution = HostMaintenance.from_parameters({"maintenance_node": "m"}).execute(cluster)
    assert solution.moves == () and len(solution.host_changes) == 1
    assert "runs no instance" in solution.explanations[-1]


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({}, "parameters.maintenance_node"),
        ({"maintenance_node": "a", "backup_node": "a"}, "parameters.backup_node"),
        ({"maintenance_node": "a", "backup_only": True}, "parameters.backup_only"),
    ],
)
def test_bad_parameters_are_named(parameters: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        HostMaintenance.from_parameters(parameters)
    assert caught.value.field == field


def test_unknown_nodes_are_named(cluster: Cluster) -> None:
    with pytest.raises(InvalidInput, match="nowhere") as caught:
        HostMaintenance.from_parameters({"maintenance_node": "nowhere"}).execute(cluster)
    assert caught.value.field == "parameters.maintenance_node"


def test_instances_return_after_maintenance() -> None:
    cluster = Cluster.of(
        [node("m", state=HostState.MAINTENANCE), node("o")],
        [vm("a", "o"), vm("b", "o"), vm("c", "o", never_migrate=True)],
    )
    solution = HostReturn.from_parameters(
        {"maintenance_node": "m", "instances": ["a", "c"], "enable_node": True}
    ).execute(cluster)
    assert [(m.instance, m.destination) for m in solution.moves] == [("a", "m")]
    assert [(c.host, c.state) for c in solution.host_changes] == [("m", HostState.ENABLED)]
    assert any("c stays on o" in e and "never_migrate" in e for e in solution.explanations)
    build_plan(solution, cluster, PlanLimits(), "audit", 0.0)


def test_return_finds_instances_by_their_evacuated_from_mark() -> None:
    marked = vm("a", "o")
    marked = type(marked)(marked.name, marked.host, marked.flavor, metadata={"evacuated_from": "m"})
    cluster = Cluster.of([node("m"), node("o")], [marked, vm("b", "o")])
    solution = HostReturn.from_parameters({"maintenance_node": "m"}).execute(cluster)
    assert [m.instance for m in solution.moves] == ["a"]


@pytest.mark.parametrize("state", [HostState.MAINTENANCE, HostState.DISABLED, HostState.OFF])
def test_nothing_returns_to_a_host_still_out_of_service(state: HostState) -> None:
    marked = replace(vm("a", "o"), metadata={"evacuated_from": "m"})
    cluster = Cluster.of([node("m", state=state), node("o")], [marked, vm("b", "o")])
    for parameters in ({"maintenance_node": "m"}, {"maintenance_node": "m", "instances": ["b"]}):
        solution = HostReturn.from_parameters(parameters).execute(cluster)
        assert solution.empty
        assert any(f"m is still {state.value}" in e for e in solution.explanations)


def test_enable_node_ends_maintenance_before_the_instances_return() -> None:
    marked = replace(vm("a", "o"), metadata={"evacuated_from": "m"})
    cluster = Cluster.of([node("m", state=HostState.MAINTENANCE), node("o")], [marked])
    solution = HostReturn.from_parameters({"maintenance_node": "m", "enable_node": True}).execute(
        cluster
    )
    assert [(m.instance, m.source, m.destination) for m in solution.moves] == [("a", "o", "m")]
    assert [(c.host, c.state) for c in solution.host_changes] == [("m", HostState.ENABLED)]
    plan = build_plan(solution, cluster, PlanLimits(), "audit", 0.0)
    enable = next(a for a in plan.actions if a.type.value == "change_node_state")
    migrate = next(a for a in plan.actions if a.type.value == "migrate")
    assert enable.id in migrate.parents
