"""Weighers beyond CPU and RAM: power efficiency, fewest instances, the recently
moved penalty and the soft server-group weighers; unknown values weigh worst."""

import math

import pytest
from decision_builders import node, vm

from opendrs.decision.host_view import HostView
from opendrs.decision.weighers import (
    FewestInstancesWeigher,
    PowerEfficiencyWeigher,
    RecentlyMovedWeigher,
    SoftAffinityWeigher,
    SoftAntiAffinityWeigher,
    WeigherContext,
    normalise,
    weigh,
    weighers_from,
)
from opendrs.domain.errors import InvalidInput
from opendrs.domain.instance import GroupPolicy

X = vm("x", "src", groups=("g",))


def test_power_efficiency_prefers_fewer_watts_per_core_and_unknown_is_worst() -> None:
    frugal = HostView.of(node("frugal", vcpus=32, metrics={"power": 160.0}), [])
    hungry = HostView.of(node("hungry", vcpus=16, metrics={"power": 160.0}), [])
    silent = HostView.of(node("silent"), [])
    weigher = PowerEfficiencyWeigher()
    assert math.isnan(weigher.raw(silent, X))
    ranked = weigh([silent, hungry, frugal], X, [weigher])
    assert [v.name for v, _ in ranked] == ["frugal", "hungry", "silent"]


def test_fewest_instances_spreads() -> None:
    busy = HostView.of(node("busy"), [vm("a", "busy"), vm("b", "busy")])
    quiet = HostView.of(node("quiet"), [vm("c", "quiet")])
    ranked = weigh([busy, quiet], X, [FewestInstancesWeigher()])
    assert ranked[0][0].name == "quiet"


def test_recently_moved_hosts_are_penalised() -> None:
    churned, calm = HostView.of(node("churned"), []), HostView.of(node("calm"), [])
    ranked = weigh([churned, calm], X, [RecentlyMovedWeigher(1.0, {"churned": 3})])
    assert [v.name for v, _ in ranked] == ["calm", "churned"]


def test_soft_group_weighers_follow_the_group_policy() -> None:
    with_peer = HostView.of(node("with"), [vm("p", "with", groups=("g",))])
    without = HostView.of(node("without"), [])
    soft_aff = SoftAffinityWeigher(1.0, {"g": GroupPolicy.SOFT_AFFINITY})
    soft_anti = SoftAntiAffinityWeigher(1.0, {"g": GroupPolicy.SOFT_ANTI_AFFINITY})
    assert weigh([with_peer, without], X, [soft_aff])[0][0].name == "with"
    assert weigh([with_peer, without], X, [soft_anti])[0][0].name == "without"
    # A weigher ignores groups of another policy.
    hard = SoftAffinityWeigher(1.0, {"g": GroupPolicy.AFFINITY})
    assert hard.raw(with_peer, X) == 0.0 == SoftAffinityWeigher(1.0, {}).raw(with_peer, X)


def test_weights_are_multiplied_and_summed() -> None:
    a = HostView.of(node("a", metrics={"power": 100.0}), [vm("1", "a"), vm("2", "a")])
    b = HostView.of(node("b", metrics={"power": 200.0}), [])
    context = WeigherContext()
    # Power favours a (1.0 × 1), fewest instances favours b (3.0 × 1): b wins.
    ranked = weigh(
        [a, b], X, weighers_from({"power_efficiency": 1, "fewest_instances": 3}, context)
    )
    assert [(v.name, w) for v, w in ranked] == [("b", 3.0), ("a", 1.0)]


def test_normalise_handles_unknown_values() -> None:
    assert normalise([math.nan, 1.0, 3.0]) == [0.0, 0.0, 1.0]
    assert normalise([math.nan]) == [0.0]


def test_unknown_weigher_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match="power_efficiency") as caught:
        weighers_from({"luck": 1.0})
    assert caught.value.field == "weights.luck"
