"""Host weighers in Nova's style: each gives a raw preference per candidate host,
normalised to 0..1 across the candidates, multiplied, and summed."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from opendrs.decision.host_view import HostView
from opendrs.domain.errors import InvalidInput
from opendrs.domain.instance import Instance


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


WEIGHERS: Mapping[str, Callable[[float], HostWeigher]] = {
    CpuLoadWeigher.name: CpuLoadWeigher,
    FreeRamWeigher.name: FreeRamWeigher,
}


def weighers_from(weights: Mapping[str, float]) -> list[HostWeigher]:
    """Weighers by name with their multipliers, e.g. {"cpu_load": 1.0}."""
    chosen: list[HostWeigher] = []
    for name, multiplier in weights.items():
        make = WEIGHERS.get(name)
        if make is None:
            raise InvalidInput(
                f"unknown weigher {name!r} (known: {', '.join(sorted(WEIGHERS))})",
                field=f"weights.{name}",
            )
        chosen.append(make(float(multiplier)))
    return chosen


def normalise(values: Sequence[float]) -> list[float]:
    """Min-max to 0..1 as Nova does; equal values all weigh 0, so they cannot tip
    the balance whatever their multiplier."""
    if not values:
        return []
    low, high = min(values), max(values)
    spread = high - low
    if spread == 0:
        return [0.0 for _ in values]
    return [(v - low) / spread for v in values]


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
