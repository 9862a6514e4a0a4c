"""StrategyRegistry: built-ins and entry points, goals, defaults, named errors;
run_audit: scope and parameters reach the strategy."""

import importlib.metadata
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
from decision_builders import cores, node

from opendrs.decision.audit import run_audit
from opendrs.decision.registry import StrategyRegistry
from opendrs.decision.strategies.overload_relief import OverloadRelief
from opendrs.domain.audit import Audit
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidInput
from opendrs.domain.solution import Solution

BUILTIN_GOALS = {
    "host_maintenance": ("host_maintenance", "host_return"),
    "overload_relief": ("overload_relief",),
    "server_consolidation": (
        "host_packing",
        "beloglazov_buyya",
        "opendrs_consolidation",
        "static_placement",
    ),
    "workload_balancing": ("workload_balance",),
}


class Idle:
    """A strategy for another goal that proposes nothing but says what it was given."""

    name: ClassVar[str] = "idle"
    goal: ClassVar[str] = "server_consolidation"

    def __init__(self, parameters: Mapping[str, Any]) -> None:
        self.parameters = dict(parameters)

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> "Idle":
        return cls(parameters)

    def execute(self, cluster: Cluster) -> Solution:
        return Solution(explanations=(f"idle with {sorted(self.parameters.items())}",))


def test_discover_finds_overload_relief_through_its_entry_point() -> None:
    registry = StrategyRegistry.discover()
    assert registry.errors == []
    assert registry.goals() == BUILTIN_GOALS
    assert registry.strategy_type("overload_relief") is OverloadRelief
    names = {e.name for e in importlib.metadata.entry_points(group="opendrs.strategies")}
    assert "overload_relief" in names


def test_broken_entry_points_are_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [
        importlib.metadata.EntryPoint("missing", "opendrs.nowhere:Nothing", "opendrs.strategies"),
        importlib.metadata.EntryPoint("odd", "opendrs.domain.host:Host", "opendrs.strategies"),
        importlib.metadata.EntryPoint("idle", f"{__name__}:Idle", "opendrs.strategies"),
    ]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: entries)
    registry = StrategyRegistry.discover()
    assert len(registry.errors) == 2
    assert "missing" in registry.errors[0] and "odd" in registry.errors[1]
    # A plugin joins its goal after the built-in default.
    assert registry.goals() == {
        **BUILTIN_GOALS,
        "server_consolidation": (*BUILTIN_GOALS["server_consolidation"], "idle"),
    }


def test_unknown_goal_strategy_and_parameter_are_named() -> None:
    registry = StrategyRegistry([OverloadRelief, Idle])
    with pytest.raises(InvalidInput, match="unknown goal 'thermal'") as caught:
        registry.create("thermal")
    assert caught.value.field == "goal"
    with pytest.raises(InvalidInput, match="unknown strategy 'magic'") as caught:
        registry.create("overload_relief", "magic")
    assert caught.value.field == "strategy"
    with pytest.raises(InvalidInput, match="serves goal 'server_consolidation'"):
        registry.create("overload_relief", "idle")
    with pytest.raises(InvalidInput, match="unknown parameter 'treshold'") as caught:
        registry.create("overload_relief", "", {"treshold": 90})
    assert caught.value.field == "parameters.treshold"


def test_a_name_cannot_be_taken_twice() -> None:
    class Impostor(Idle):
        name: ClassVar[str] = "overload_relief"

    registry = StrategyRegistry([OverloadRelief])
    registry.register(OverloadRelief)
    with pytest.raises(InvalidInput, match="already taken"):
        registry.register(Impostor)


def hot_cluster() -> Cluster:
    return Cluster.of(
        [node("h1", vcpus=10), node("h2", vcpus=10), node("spare", vcpus=64)],
        [cores("x", "h1", 9.0), cores("y", "h2", 9.0)],
    )


def test_run_audit_applies_scope_and_parameters() -> None:
    registry = StrategyRegistry.discover()
    audit = Audit(goal="overload_relief", strategy="", scope=("h2",), parameters={"target": 50})
    solution = run_audit(audit, hot_cluster(), registry)
    assert [(m.instance, m.source, m.destination) for m in solution.moves] == [("y", "h2", "spare")]
    assert "(target 50%)" in solution.moves[0].reason


def test_run_audit_without_scope_covers_every_host() -> None:
    solution = run_audit(
        Audit(goal="overload_relief", strategy="overload_relief"),
        hot_cluster(),
        StrategyRegistry.discover(),
    )
    assert {m.source for m in solution.moves} == {"h1", "h2"}


def test_run_audit_refuses_contradicting_scopes_and_unknown_hosts() -> None:
    registry = StrategyRegistry.discover()
    clash = Audit(goal="overload_relief", strategy="", scope=("h1",), parameters={"scope": ["h2"]})
    with pytest.raises(InvalidInput, match="disagree") as caught:
        run_audit(clash, hot_cluster(), registry)
    assert caught.value.field == "parameters.scope"
    assert clash.id in caught.value.source
    ghost = Audit(goal="overload_relief", strategy="", scope=("h9",))
    with pytest.raises(InvalidInput, match="h9"):
        run_audit(ghost, hot_cluster(), registry)


def test_run_audit_passes_parameters_to_other_strategies() -> None:
    registry = StrategyRegistry([OverloadRelief, Idle])
    solution = run_audit(
        Audit(goal="server_consolidation", strategy="", parameters={"k": 1}),
        hot_cluster(),
        registry,
    )
    assert solution.explanations == ("idle with [('k', 1)]",)
