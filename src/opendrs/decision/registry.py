"""Goals and the strategies that serve them: the built-in strategies plus those
found through the `opendrs.strategies` entry points, created with checked parameters."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from opendrs.decision.consolidation.opendrs_policy import OpendrsConsolidation
from opendrs.decision.consolidation.policies import BeloglazovBuyya, StaticPlacement
from opendrs.decision.strategies.host_maintenance import HostMaintenance, HostReturn
from opendrs.decision.strategies.host_packing import HostPacking
from opendrs.decision.strategies.overload_relief import OverloadRelief
from opendrs.decision.strategies.workload_balance import WorkloadBalance
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidInput
from opendrs.domain.solution import Solution

ENTRY_POINT_GROUP = "opendrs.strategies"


class Strategy(Protocol):
    def execute(self, cluster: Cluster) -> Solution: ...


class StrategyType(Protocol):
    """A strategy class: its name, the goal it serves, and how it is made from
    loose parameters (raising InvalidInput naming a bad one)."""

    @property
    def name(self) -> str: ...

    @property
    def goal(self) -> str: ...

    def from_parameters(self, parameters: Mapping[str, Any]) -> Strategy: ...


def builtin_strategies() -> tuple[StrategyType, ...]:
    """Ours, each goal's default first: they come before any entry point, so a
    plugin adds strategies to a goal without taking over its default."""
    return (
        OverloadRelief,
        HostMaintenance,
        HostReturn,
        WorkloadBalance,
        HostPacking,
        BeloglazovBuyya,
        OpendrsConsolidation,
        StaticPlacement,
    )


class StrategyRegistry:
    def __init__(self, strategies: Iterable[StrategyType] = ()) -> None:
        self._strategies: dict[str, StrategyType] = {}
        self.errors: list[str] = []
        for strategy in strategies:
            self.register(strategy)

    @classmethod
    def discover(cls, group: str = ENTRY_POINT_GROUP) -> StrategyRegistry:
        """Built-ins, then every entry point of `group`. A plugin that fails to load
        or does not look like a strategy is left out and noted in `errors`."""
        registry = cls(builtin_strategies())
        for entry in importlib.metadata.entry_points(group=group):
            try:
                loaded = entry.load()
            except Exception as exc:
                registry.errors.append(f"strategy {entry.name} ({entry.value}): {exc!r}")
                continue
            problem = _not_a_strategy(loaded)
            if problem:
                registry.errors.append(f"strategy {entry.name} ({entry.value}): {problem}")
                continue
            try:
                registry.register(loaded)
            except InvalidInput as exc:
                registry.errors.append(f"strategy {entry.name} ({entry.value}): {exc}")
        return registry

    def register(self, strategy: StrategyType) -> None:
        known = self._strategies.get(strategy.name)
        if known is strategy:
            return
        if known is not None:
            raise InvalidInput(
                f"strategy name {strategy.name!r} is already taken by {known!r}", field="strategy"
            )
        self._strategies[strategy.name] = strategy

    def goals(self) -> dict[str, tuple[str, ...]]:
        """Each goal with its strategies, the default (first registered) first."""
        goals: dict[str, list[str]] = {}
        for strategy in self._strategies.values():
            goals.setdefault(strategy.goal, []).append(strategy.name)
        return {goal: tuple(names) for goal, names in sorted(goals.items())}

    def strategy_type(self, goal: str, strategy: str = "") -> StrategyType:
        """The strategy named, or the goal's default when `strategy` is empty."""
        goals = self.goals()
        if goal not in goals:
            raise InvalidInput(
                f"unknown goal {goal!r} (known: {', '.join(goals) or 'none'})", field="goal"
            )
        if not strategy:
            return self._strategies[goals[goal][0]]
        found = self._strategies.get(strategy)
        if found is None:
            raise InvalidInput(
                f"unknown strategy {strategy!r} (known: {', '.join(sorted(self._strategies))})",
                field="strategy",
            )
        if found.goal != goal:
            raise InvalidInput(
                f"strategy {strategy!r} serves goal {found.goal!r}, not {goal!r}", field="strategy"
            )
        return found

    def create(
        self, goal: str, strategy: str = "", parameters: Mapping[str, Any] | None = None
    ) -> Strategy:
        return self.strategy_type(goal, strategy).from_parameters(parameters or {})


def _not_a_strategy(loaded: object) -> str:
    for attribute in ("name", "goal"):
        if not isinstance(getattr(loaded, attribute, None), str):
            return f"has no text attribute {attribute!r}"
    if not callable(getattr(loaded, "from_parameters", None)):
        return "has no from_parameters()"
    return ""
