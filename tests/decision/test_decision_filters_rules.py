"""The placement rules beyond capacity: never_migrate, instance state, zones,
aggregates, affinity groups moving whole, and soft groups held hard on request."""

from decision_builders import node, vm

from opendrs.decision.filters import (
    AggregateFilter,
    AvailabilityZoneFilter,
    InstanceStateFilter,
    NeverMigrateFilter,
    PlacementRequest,
    ServerGroupFilter,
    SoftServerGroupFilter,
)
from opendrs.decision.host_view import HostView
from opendrs.decision.placement import Placement
from opendrs.decision.policy import AuditParameters, placement_filters
from opendrs.domain.cluster import Cluster
from opendrs.domain.instance import Flavor, GroupPolicy, Instance, InstanceState, ServerGroup

REQUEST = PlacementRequest(source="src")


def pinned(name: str, **metadata: str) -> Instance:
    return Instance(name, "src", Flavor("f", 1, 1024), metadata=metadata)


def test_never_migrate_refuses_every_host() -> None:
    view = HostView.of(node("n"), [])
    assert NeverMigrateFilter().passes(view, vm("x", "src"), REQUEST) is None
    reason = NeverMigrateFilter().passes(view, vm("x", "src", never_migrate=True), REQUEST)
    assert reason is not None and "never_migrate" in reason


def test_only_active_and_stopped_instances_migrate() -> None:
    view = HostView.of(node("n"), [])
    for state in (InstanceState.ACTIVE, InstanceState.STOPPED):
        assert InstanceStateFilter().passes(view, vm("x", "src", state=state), REQUEST) is None
    reason = InstanceStateFilter().passes(view, vm("x", "src", state=InstanceState.ERROR), REQUEST)
    assert reason is not None and "error" in reason


def test_a_zone_pinned_instance_stays_in_its_zone() -> None:
    instance = pinned("x", availability_zone="az2")
    same = HostView.of(node("a", availability_zone="az2"), [])
    other = HostView.of(node("b", availability_zone="az1"), [])
    assert AvailabilityZoneFilter().passes(same, instance, REQUEST) is None
    reason = AvailabilityZoneFilter().passes(other, instance, REQUEST)
    assert reason is not None and "pinned to zone az2" in reason and "az1" in reason
    assert AvailabilityZoneFilter().passes(other, pinned("y"), REQUEST) is None


def test_an_aggregate_bound_instance_goes_to_one_of_its_aggregates() -> None:
    instance = pinned("x", aggregate="ssd, gpu")
    assert (
        AggregateFilter().passes(HostView.of(node("a", aggregates=("gpu",)), []), instance, REQUEST)
        is None
    )
    reason = AggregateFilter().passes(
        HostView.of(node("b", aggregates=("general",)), []), instance, REQUEST
    )
    assert reason is not None and "gpu, ssd" in reason and "general" in reason


def affinity_cluster(policy: GroupPolicy) -> Cluster:
    return Cluster.of(
        [node("src"), node("a"), node("b")],
        [vm("x", "src", groups=("g",)), vm("y", "src", groups=("g",)), vm("z", "b")],
        [ServerGroup("g", policy)],
    )


def test_an_affinity_member_moves_only_with_its_group() -> None:
    cluster = affinity_cluster(GroupPolicy.AFFINITY)
    placement = Placement(cluster, placement_filters(AuditParameters()))
    x, y = cluster.instances["x"], cluster.instances["y"]
    alone = placement.refusal(x, "a")
    assert alone is not None and "would be split" in alone
    assert placement.refusal(x, "a", with_group=True) is None
    placement.place(x, "a")
    # Once x has gone ahead, y may only join it.
    assert placement.refusal(y, "a", with_group=True) is None
    elsewhere = placement.refusal(y, "b", with_group=True)
    assert elsewhere is not None and "members elsewhere" in elsewhere


def test_hard_anti_affinity_is_always_held() -> None:
    cluster = Cluster.of(
        [node("src"), node("a")],
        [vm("x", "src", groups=("g",)), vm("y", "a", groups=("g",))],
        [ServerGroup("g", GroupPolicy.ANTI_AFFINITY)],
    )
    placement = Placement(cluster, placement_filters(AuditParameters()))
    reason = placement.refusal(cluster.instances["x"], "a")
    assert reason is not None and "anti-affinity group g" in reason


def test_soft_groups_bend_unless_the_audit_says_otherwise() -> None:
    cluster = Cluster.of(
        [node("src"), node("a")],
        [vm("x", "src", groups=("g",)), vm("y", "a", groups=("g",))],
        [ServerGroup("g", GroupPolicy.SOFT_ANTI_AFFINITY)],
    )
    x = cluster.instances["x"]
    bending = Placement(cluster, placement_filters(AuditParameters()))
    assert bending.refusal(x, "a") is None
    strict = Placement(cluster, placement_filters(AuditParameters(soft_rules_may_bend=False)))
    reason = strict.refusal(x, "a")
    assert reason is not None and "soft rules may not bend" in reason


def test_soft_affinity_held_hard_keeps_the_group_together() -> None:
    cluster = affinity_cluster(GroupPolicy.SOFT_AFFINITY)
    view = HostView.of(cluster.hosts["a"], [])
    request = PlacementRequest(
        source="src",
        group_policies={"g": GroupPolicy.SOFT_AFFINITY},
        group_sizes={"g": 2},
        group_away={"g": 0},
    )
    reason = SoftServerGroupFilter().passes(view, cluster.instances["x"], request)
    assert reason is not None and reason.startswith("soft_server_group:")
    assert ServerGroupFilter().passes(view, cluster.instances["x"], request) is None


def test_candidates_limit_the_hosts_ranked() -> None:
    cluster = Cluster.of([node("src"), node("a"), node("b")], [vm("x", "src")])
    placement = Placement(cluster, placement_filters(AuditParameters()), candidates=["b"])
    ranking = placement.rank(cluster.instances["x"])
    assert [h for h, _ in ranking.candidates] == ["b"] and ranking.rejections == {}
