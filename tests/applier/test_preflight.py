"""preflight.judge on a hand-made live view: disk counts when the instance has one,
a migration the cloud already lists on the destination is not counted twice, and
Nova's reported use wins when it is larger (instances outside opendrs's view)."""

from __future__ import annotations

from dataclasses import dataclass, field

from opendrs.applier.preflight import GO, arrivals, judge
from opendrs.domain.action import Action, ActionState, ActionType
from opendrs.domain.errors import NotFound
from opendrs.domain.host import Host
from opendrs.domain.instance import Flavor, Instance
from opendrs.domain.ports import HostOccupancy


@dataclass
class View:
    hosts: dict[str, Host]
    instances: dict[str, Instance] = field(default_factory=dict)

    def instance_now(self, instance: str) -> Instance | None:
        return self.instances.get(instance)

    def host_now(self, host: str) -> HostOccupancy:
        if host not in self.hosts:
            raise NotFound("host", host)
        on = tuple(i for i in self.instances.values() if i.host == host)
        return HostOccupancy(self.hosts[host], on)


def vm(name: str, host: str, vcpus: int = 2, memory_mb: int = 2048, disk_gb: int = 0) -> Instance:
    return Instance(name, host, Flavor("f", vcpus, memory_mb, disk_gb))


def flying(instance: str, destination: str, vcpus: int, memory_mb: int) -> Action:
    return Action(
        ActionType.MIGRATE,
        {"instance": instance, "source": "a", "destination": destination,
         "vcpus": vcpus, "memory_mb": memory_mb},
        state=ActionState.ONGOING,
    )  # fmt: skip


def test_disk_is_named_when_the_instance_has_local_disk() -> None:
    view = View({"a": Host("a", 8, 8192), "b": Host("b", 8, 8192, local_gb=50)})
    view.instances = {"x": vm("x", "a", disk_gb=40), "y": vm("y", "b", disk_gb=20)}
    verdict = judge(view, "x", "a", "b", [])
    assert verdict.state == ActionState.FAILED
    assert verdict.message == (
        "b has 6 vCPU, 6144 MB RAM and 30 GB disk free, x needs 2 vCPU, 2048 MB RAM and "
        "40 GB disk (short by 10 GB disk); not moved"
    )


def test_an_arrival_the_cloud_already_lists_counts_once() -> None:
    view = View({"a": Host("a", 8, 8192), "b": Host("b", 4, 8192)})
    view.instances = {"x": vm("x", "a"), "y": vm("y", "b")}  # y is migrating to b
    coming = arrivals([flying("y", "b", 2, 2048), flying("z", "c", 2, 2048)], "b", "x")
    assert [i.name for i in coming] == ["y"]
    assert judge(view, "x", "a", "b", coming) is GO
    extra = arrivals([flying("w", "b", 1, 512)], "b", "x")
    verdict = judge(view, "x", "a", "b", coming + extra)
    assert verdict.message.startswith("b has 1 vCPU and 5632 MB RAM free, counting 1 migration")


def test_the_instances_own_migration_is_not_an_arrival() -> None:
    assert arrivals([flying("x", "b", 2, 2048)], "b", "x") == []


def test_novas_reported_use_wins_when_it_is_larger() -> None:
    busy = Host("b", 8, 8192, vcpus_used=7, memory_mb_used=1024)
    view = View({"a": Host("a", 8, 8192), "b": busy}, {"x": vm("x", "a")})
    verdict = judge(view, "x", "a", "b", [])
    assert verdict.message.startswith("b has 1 vCPU and 7168 MB RAM free, x needs 2 vCPU")
