"""Host weighers in Nova's style: each gives a raw preference per candidate host,
normalised to 0..1 across the candidates, multiplied, and summed."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from opendrs.decision.host_view import HostView
from opendrs.domain.errors import InvalidInput
from opendrs.domain.instance import GroupPolicy, Instance


class HostWeigher(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def multiplier(self) -> float: ...

    def raw(self, host: HostView, instance: Instance) -> float:
        """Higher is better, in whatever unit suits the weigher."""
        ...


class CpuLoadWeigher:
    """Prefers the host whose measured CPU would be lowest with the instance on it."""

    name = "cpu_load"

    def __init__(self, multiplier: float = 1.0) -> None:
        self.multiplier = multiplier

    def raw(self, host: HostView, instance: Instance) -> float:
        return -host.cpu_percent_with(instance.cpu_cores_used)


class FreeRamWeigher:
    """Prefers the host with the most allocatable RAM left after the placement."""

    name = "free_ram"

    def __init__(self, multiplier: float = 1.0) -> None:
        self.multiplier = multiplier

    def raw(self, host: HostView, instance: Instance) -> float:
        return host.free_memory_mb - instance.memory_mb


@dataclass(frozen=True, slots=True)
class WeigherContext:
    """What some weighers need beyond the host and the instance: the policy of each
    server group, and how many migrations each host saw recently."""

    group_policies: Mapping[str, GroupPolicy] = field(default_factory=dict)
    recent_host_moves: Mapping[str, int] = field(default_factory=dict)


class PowerEfficiencyWeigher:
    """Prefers the host drawing the fewest watts per core (host metric `power`);
    a host that reports no power weighs as the worst."""

    name = "power_efficiency"

    def __init__(self, multiplier: float = 1.0) -> None:
        self.multiplier = multiplier

    def raw(self, host: HostView, instance: Instance) -> float:
        watts = host.host.metrics.get("power")
        if watts is None or host.host.vcpus <= 0:
            return math.nan
        return -watts / host.host.vcpus


class FewestInstancesWeigher:
    """Prefers the host running the fewest instances (spreads the blast radius)."""

    name = "fewest_instances"

    def __init__(self, multiplier: float = 1.0) -> None:
        self.multiplier = multiplier

    def raw(self, host: HostView, instance: Instance) -> float:
        return -float(host.instance_count)


class RecentlyMovedWeigher:
    """Penalises hosts that took part in recent migrations, so one host is not
    churned audit after audit."""

    name = "recently_moved"

    def __init__(self, multiplier: float = 1.0, recent: Mapping[str, int] | None = None) -> None:
        self.multiplier = multiplier
        self._recent = dict(recent or {})

    def raw(self, host: HostView, instance: Instance) -> float:
        return -float(self._recent.get(host.name, 0))


class SoftAffinityWeigher:
    """Prefers hosts holding members of the instance's soft-affinity groups."""

    name = "soft_affinity"

    def __init__(self, multiplier: float = 1.0, policies: Mapping[str, GroupPolicy] | None = None):
        self.multiplier = multiplier
        self._policies = dict(policies or {})

    def raw(self, host: HostView, instance: Instance) -> float:
        return float(
            sum(
                host.group_members.get(g, 0)
                for g in instance.groups
                if self._policies.get(g) == GroupPolicy.SOFT_AFFINITY
            )
        )


class SoftAntiAffinityWeigher:
    """Prefers hosts holding the fewest members of its soft-anti-affinity groups."""

    name = "soft_anti_affinity"

    def __init__(self, multiplier: float = 1.0, policies: Mapping[str, GroupPolicy] | None = None):
        self.multiplier = multiplier
        self._policies = dict(policies or {})

    def raw(self, host: HostView, instance: Instance) -> float:
        return -float(
            sum(
                host.group_members.get(g, 0)
                for g in instance.groups
                if self._policies.get(g) == GroupPolicy.SOFT_ANTI_AFFINITY
            )
        )


def _make(name: str, multiplier: float, context: WeigherContext) -> HostWeigher | None:
    if name == CpuLoadWeigher.name:
        return CpuLoadWeigher(multiplier)
    if name == FreeRamWeigher.name:
        return FreeRamWeigher(multiplier)
    if name == PowerEfficiencyWeigher.name:
        return PowerEfficiencyWeigher(multiplier)
    if name == FewestInstancesWeigher.name:
        return FewestInstancesWeigher(multiplier)
    if name == RecentlyMovedWeigher.name:
        return RecentlyMovedWeigher(multiplier, context.recent_host_moves)
    if name == SoftAffinityWeigher.name:
        return SoftAffinityWeigher(multiplier, context.group_policies)
    if name == SoftAntiAffinityWeigher.name:
        return SoftAntiAffinityWeigher(multiplier, context.group_policies)
    return None


WEIGHER_NAMES: tuple[str, ...] = (
    CpuLoadWeigher.name,
    FreeRamWeigher.name,
    PowerEfficiencyWeigher.name,
    FewestInstancesWeigher.name,
    RecentlyMovedWeigher.name,
    SoftAffinityWeigher.name,
    SoftAntiAffinityWeigher.name,
)


def weighers_from(
    weights: Mapping[str, float], context: WeigherContext | None = None
) -> list[HostWeigher]:
    """Weighers by name with their multipliers, e.g. {"cpu_load": 1.0}."""
    chosen: list[HostWeigher] = []
    for name, multiplier in weights.items():
        made = _make(name, float(multiplier), context or WeigherContext())
        if made is None:
            raise InvalidInput(
                f"unknown weigher {name!r} (known: {', '.join(sorted(WEIGHER_NAMES))})",
                field=f"weights.{name}",
            )
        chosen.append(made)
    return chosen


def normalise(values: Sequence[float]) -> list[float]:
    """Min-max to 0..1 as Nova does; equal values all weigh 0, so they cannot tip
    the balance whatever their multiplier. Unknown values (NaN) weigh 0, the worst."""
    known = [v for v in values if not math.isnan(v)]
    if not known:
        return [0.0 for _ in values]
    low, high = min(known), max(known)
    spread = high - low
    if spread == 0:
        return [0.0 for _ in values]
    return [0.0 if math.isnan(v) else (v - low) / spread for v in values]


def weigh(
    hosts: Sequence[HostView], instance: Instance, weighers: Sequence[HostWeigher]
) -> list[tuple[HostView, float]]:
    """Candidates with their total weight, best first; equal weights by host name."""
    totals = [0.0] * len(hosts)
    for weigher in weighers:
        scaled = normalise([weigher.raw(h, instance) for h in hosts])
        for index, value in enumerate(scaled):
            totals[index] += weigher.multiplier * value
    ranked = list(zip(hosts, totals, strict=True))
    ranked.sort(key=lambda pair: (-pair[1], pair[0].name))
    return ranked
