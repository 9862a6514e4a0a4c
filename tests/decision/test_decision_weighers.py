"""Weighers: Nova's min-max normalisation, multipliers, sums, deterministic ties."""

import pytest
from decision_builders import node, vm

from opendrs.decision.host_view import HostView
from opendrs.decision.weighers import (
    CpuLoadWeigher,
    FreeRamWeigher,
    normalise,
    weigh,
    weighers_from,
)
from opendrs.domain.errors import InvalidInput


def test_normalise_maps_to_zero_one() -> None:
    assert normalise([10.0, 20.0, 30.0]) == [0.0, 0.5, 1.0]
    assert normalise([-5.0, 5.0]) == [0.0, 1.0]
    assert normalise([7.0, 7.0]) == [0.0, 0.0]
    assert normalise([]) == []


def views() -> list[HostView]:
    # busy: 50% CPU, lots of RAM free; quiet: 10% CPU, little RAM free.
    return [
        HostView.of(node("busy", vcpus=10, memory_mb=65536), [vm("a", "busy", vcpus=5, cpu=100)]),
        HostView.of(
            node("quiet", vcpus=10, memory_mb=8192),
            [vm("b", "quiet", vcpus=1, memory_mb=4096, cpu=100)],
        ),
    ]


def test_least_loaded_cpu_comes_first() -> None:
    ranked = weigh(views(), vm("x", "s", cpu=0.0), [CpuLoadWeigher()])
    assert [(v.name, w) for v, w in ranked] == [("quiet", 1.0), ("busy", 0.0)]


def test_multipliers_scale_and_weights_sum() -> None:
    instance = vm("x", "s", cpu=0.0)
    ranked = weigh(views(), instance, [CpuLoadWeigher(1.0), FreeRamWeigher(3.0)])
    assert [(v.name, w) for v, w in ranked] == [("busy", 3.0), ("quiet", 1.0)]
    negative = weigh(views(), instance, [CpuLoadWeigher(-1.0)])
    assert [v.name for v, _ in negative] == ["busy", "quiet"]


def test_equal_weights_are_ordered_by_name() -> None:
    same = [HostView.of(node(n), []) for n in ("c", "a", "b")]
    assert [v.name for v, _ in weigh(same, vm("x", "s"), [CpuLoadWeigher()])] == ["a", "b", "c"]


def test_weighers_by_name() -> None:
    chosen = weighers_from({"cpu_load": 2.0, "free_ram": 0.5})
    assert [(w.name, w.multiplier) for w in chosen] == [("cpu_load", 2.0), ("free_ram", 0.5)]
    with pytest.raises(InvalidInput, match="unknown weigher 'io'") as caught:
        weighers_from({"io": 1.0})
    assert caught.value.field == "weights.io"
