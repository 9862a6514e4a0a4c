"""host_packing (server_consolidation's default) on examples/scenarios/consolidation.yaml
and small clusters: fewest hosts the rules allow, least memory moved, released
hosts powered off (or marked), every rule held, and why nothing is proposed."""

from pathlib import Path

import pytest
from decision_builders import applied, cores, node, vm

from opendrs.decision.strategies.host_packing import HostPacking, lower_bound_hosts
from opendrs.domain.action import PlanLimits
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidInput
from opendrs.domain.host import HostState
from opendrs.domain.solution import Solution
from opendrs.planner import build_plan
from opendrs.scenario import load_scenario

SCENARIO = Path(__file__).parents[2] / "examples" / "scenarios" / "consolidation.yaml"


def pack(cluster: Cluster, **parameters: object) -> Solution:
    solution = HostPacking.from_parameters(parameters).execute(cluster)
    build_plan(solution, cluster, PlanLimits(), "audit", 0.0)
    return solution


def after(cluster: Cluster, solution: Solution) -> Cluster:
    return applied(cluster, [(m.instance, m.destination) for m in solution.moves])


@pytest.mark.parametrize("exact", [False, True])
def test_the_example_keeps_every_rule(exact: bool) -> None:
    cluster = load_scenario(SCENARIO)
    solution = pack(cluster, exact=exact)
    final = after(cluster, solution)
    # Three web VMs in anti-affinity need three hosts: the bound the rules allow.
    assert solution.efficacy["active_hosts_after"] == 3.0
    web_hosts = {final.instances[f"web-{n}"].host for n in (1, 2, 3)}
    assert len(web_hosts) == 3
    assert final.instances["db-1"].host == final.instances["db-2"].host
    assert final.hosts[final.instances["pinned-1"].host].availability_zone == "az2"
    assert "ssd" in final.hosts[final.instances["ssd-1"].host].aggregates
    assert final.instances["licensed-1"].host == "az2-h2"
    # The disabled host is neither a source nor a destination.
    assert final.instances["spare-1"].host == "az2-h3"
    assert all(m.destination != "az2-h3" for m in solution.moves)
    released = {c.host for c in solution.host_changes}
    assert all(c.state == HostState.OFF for c in solution.host_changes)
    assert released == {m.source for m in solution.moves}
    assert all(not final.instances_on(h) for h in released)
    assert solution.efficacy["predicted_power_saved_w"] == sum(
        cluster.hosts[h].metrics["power"] for h in released
    )


def test_the_cheapest_hosts_are_emptied_onto_the_tightest_fit() -> None:
    cluster = Cluster.of(
        [node("big", memory_mb=16384), node("mid", memory_mb=16384), node("low", memory_mb=16384)],
        [
            vm("b1", "big", memory_mb=8192, cpu=10),
            vm("m1", "mid", memory_mb=4096, cpu=10),
            vm("l1", "low", memory_mb=2048, cpu=10),
        ],
    )
    solution = pack(cluster, exact=False)
    # low (2 GB) goes first, onto big, the tightest fit; then mid (4 GB) onto big too.
    assert [(m.instance, m.destination) for m in solution.moves] == [("l1", "big"), ("m1", "big")]
    assert solution.efficacy["memory_moved_mb"] == 6144.0
    assert solution.efficacy["lower_bound_hosts"] == 1.0
    assert "tightest fit" in solution.moves[0].reason


def test_released_hosts_can_be_marked_instead_of_powered_off() -> None:
    cluster = Cluster.of([node("a"), node("b"), node("idle")], [vm("x", "a"), vm("y", "b")])
    solution = pack(cluster, release_state="disabled")
    assert {(c.host, c.state) for c in solution.host_changes} == {
        ("a", HostState.DISABLED),
        ("idle", HostState.DISABLED),
    }
    kept_idle = pack(cluster, release_idle=False)
    assert {c.host for c in kept_idle.host_changes} == {"a"}


def test_no_receiving_host_goes_over_the_cpu_ceiling() -> None:
    cluster = Cluster.of(
        [node("a", vcpus=10), node("b", vcpus=10)],
        [cores("x", "a", 5.0), cores("y", "b", 4.0)],
    )
    solution = pack(cluster, max_cpu_percent=80)
    assert solution.moves == ()
    assert any("no host can be emptied" in e and "cpu_headroom" in e for e in solution.explanations)
    assert pack(cluster, max_cpu_percent=95).efficacy["active_hosts_after"] == 1.0


def test_held_instances_keep_their_host() -> None:
    cluster = Cluster.of(
        [node("a"), node("b")],
        [vm("x", "a", never_migrate=True), vm("y", "b")],
    )
    solution = pack(cluster, recently_moved=["y"])
    assert solution.moves == ()
    why = " ".join(solution.explanations)
    assert "x is marked never_migrate" in why and "y is moved recently" in why


def test_budgets_stop_hosts_from_being_emptied_halfway() -> None:
    cluster = Cluster.of(
        [node("a"), node("b"), node("c")],
        [vm("x1", "a"), vm("x2", "a"), vm("y", "b", memory_mb=4096), vm("z", "c", memory_mb=8192)],
    )
    solution = pack(cluster, max_migrations=1)
    assert [m.instance for m in solution.moves] == ["y"]
    assert any("a: the audit may plan at most 1" in e for e in solution.explanations)
    # Equal memory on a and b: b needs one migration, a two, so b goes first.
    by_bytes = pack(cluster, max_bytes_moved=4096 * 1024 * 1024)
    assert [m.instance for m in by_bytes.moves] == ["y"]
    assert any("bytes" in e for e in by_bytes.explanations)


def test_nothing_to_consolidate_is_explained() -> None:
    cluster = Cluster.of([node("a")], [vm("x", "a")])
    solution = pack(cluster)
    assert solution.empty
    assert any("no host can be emptied" in e for e in solution.explanations)


def test_lower_bound_takes_the_biggest_hosts_first() -> None:
    cluster = Cluster.of(
        [
            node("big", vcpus=32, memory_mb=65536),
            node("s1", vcpus=8, memory_mb=8192),
            node("s2", vcpus=8, memory_mb=8192),
        ],
        [vm(f"v{n}", "s1", vcpus=1, memory_mb=8192, cpu=0) for n in range(9)],
    )
    assert lower_bound_hosts(cluster, sorted(cluster.hosts), 80.0) == 2


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"max_cpu_percent": 0}, "parameters.max_cpu_percent"),
        ({"release_state": "asleep"}, "parameters.release_state"),
        ({"scan_limit": 0}, "parameters.scan_limit"),
        ({"max_migrations": -2}, "parameters.max_migrations"),
    ],
)
def test_bad_parameters_are_named(parameters: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        HostPacking.from_parameters(parameters)
    assert caught.value.field == field


def greedy_trap() -> Cluster:
    """Five 10 GB hosts where emptying cheapest-first onto the tightest fit keeps
    four hosts, while three suffice (the lower bound)."""
    layout = [("v0", "h3", 5), ("v1", "h2", 5), ("v2", "h4", 4), ("v3", "h4", 2),
              ("v5", "h0", 3), ("v7", "h1", 6), ("v8", "h2", 5)]  # fmt: skip
    return Cluster.of(
        [node(f"h{n}", vcpus=64, memory_mb=10240) for n in range(5)],
        [
            vm(name, host, vcpus=1, memory_mb=gb * 1024, cpu=1, disk_gb=0)
            for name, host, gb in layout
        ],
    )


def test_the_exact_model_beats_the_greedy_on_a_small_cluster() -> None:
    import ortools  # noqa: F401  (a test dependency: the `exact` extra)

    cluster = greedy_trap()
    greedy = pack(cluster, exact=False)
    exact = pack(cluster, exact=True)
    assert greedy.efficacy["active_hosts_after"] == 4.0
    assert exact.efficacy["active_hosts_after"] == 3.0 == exact.efficacy["lower_bound_hosts"]
    assert any("exact model (proved optimal) improved" in e for e in exact.explanations)
    assert all("CP-SAT" in m.reason for m in exact.moves)
    # The same answer every time: the budget is in deterministic time.
    assert pack(cluster, exact=True).moves == exact.moves


def test_without_ortools_the_greedy_answer_stands(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_ortools(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("ortools"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_ortools)
    solution = pack(greedy_trap(), exact=True)
    assert solution.efficacy["active_hosts_after"] == 4.0
    assert not any("exact model" in e for e in solution.explanations)


def test_the_exact_model_keeps_out_of_large_clusters() -> None:
    solution = pack(greedy_trap(), exact=True, exact_max_instances=3)
    assert solution.efficacy["active_hosts_after"] == 4.0


def test_a_failing_exact_model_leaves_the_greedy_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from opendrs.decision.strategies import packing_model

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(packing_model, "refine", broken)
    solution = pack(greedy_trap(), exact=True)
    assert solution.efficacy["active_hosts_after"] == 4.0
    assert any("exact model failed" in e and "solver crashed" in e for e in solution.explanations)
