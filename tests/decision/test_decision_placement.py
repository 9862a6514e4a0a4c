"""Placement: resources are consumed virtually as each instance is placed."""

from decision_builders import node, vm

from opendrs.decision.filters import CpuHeadroomFilter, capacity_filters
from opendrs.decision.placement import Placement
from opendrs.decision.weighers import CpuLoadWeigher
from opendrs.domain.cluster import Cluster
from opendrs.domain.host import HostState


def scene() -> Cluster:
    return Cluster.of(
        [
            node("src", vcpus=8),
            node("b", vcpus=4, memory_mb=8192),
            node("c", vcpus=4, memory_mb=8192),
            node("off", vcpus=64, state=HostState.OFF),
        ],
        [vm("x", "src", vcpus=3, cpu=10), vm("y", "src", vcpus=3, cpu=10)],
    )


def test_two_instances_that_fit_alone_but_not_together_go_to_different_hosts() -> None:
    cluster = scene()
    placement = Placement(cluster, capacity_filters(), [CpuLoadWeigher()])
    first, _ = placement.choose_destination(cluster.instances["x"], "src")
    assert first == "b"
    placement.place(cluster.instances["x"], first)
    second, rejections = placement.choose_destination(cluster.instances["y"], "src")
    assert second == "c"
    assert "needs 3, 1 free" in rejections["b"]
    assert "source" in rejections["src"]
    assert "off" in rejections["off"]
    placement.place(cluster.instances["y"], second)
    after = placement.cluster()
    assert after.instances["x"].host == "b" and after.instances["y"].host == "c"
    assert cluster.instances["x"].host == "src"
    assert placement.view("src").vcpus_used == 0


def test_no_destination_explains_every_host() -> None:
    cluster = Cluster.of([node("src", vcpus=8), node("b", vcpus=2)], [vm("x", "src", vcpus=3)])
    chosen, rejections = Placement(cluster, capacity_filters()).choose_destination(
        cluster.instances["x"], "src"
    )
    assert chosen is None
    assert set(rejections) == {"src", "b"}


def test_measured_cpu_moves_with_the_instance() -> None:
    cluster = Cluster.of(
        [node("a", vcpus=10), node("b", vcpus=10)],
        [vm("x", "a", vcpus=4, cpu=50), vm("y", "a", vcpus=4, cpu=100)],
    )
    placement = Placement(cluster, [*capacity_filters(), CpuHeadroomFilter(75.0)])
    assert placement.cpu_percent("a") == 60.0
    placement.place(cluster.instances["y"], "b")
    assert placement.cpu_percent("a") == 20.0
    assert placement.cpu_percent("b") == 40.0
    assert [i.name for i in placement.instances_on("b")] == ["y"]
    # b is at 40%: x (2 cores) would take it to 60%, still fine; a bigger one would not.
    assert placement.choose_destination(cluster.instances["x"])[0] == "b"


def test_rollback_restores_the_exact_state() -> None:
    cluster = scene()
    placement = Placement(cluster, capacity_filters())
    views = placement.views()
    mark = placement.checkpoint()
    placement.place(cluster.instances["x"], "b")
    placement.place(cluster.instances["x"], "c")
    placement.place(cluster.instances["y"], "b")
    placement.rollback(mark)
    assert placement.views() == views
    assert placement.location("x") == "src"
    assert [i.name for i in placement.instances_on("src")] == ["x", "y"]
    assert placement.cluster() == cluster
