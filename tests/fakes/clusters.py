"""Small builders for Cluster snapshots, so tests read as the situation they set up."""

from __future__ import annotations

from opendrs.domain.cluster import Cluster
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Flavor, GroupPolicy, Instance, ServerGroup


def host(name: str, vcpus: int = 8, memory_mb: int = 8192, **fields: object) -> Host:
    return Host(name=name, vcpus=vcpus, memory_mb=memory_mb, **fields)  # type: ignore[arg-type]


def vm(
    name: str, on: str, vcpus: int = 2, memory_mb: int = 2048, groups: tuple[str, ...] = ()
) -> Instance:
    return Instance(
        name=name,
        host=on,
        flavor=Flavor(f"f{vcpus}-{memory_mb}", vcpus, memory_mb),
        groups=groups,
    )


def cluster(
    hosts: list[Host], instances: list[Instance], groups: dict[str, GroupPolicy] | None = None
) -> Cluster:
    return Cluster.of(hosts, instances, [ServerGroup(n, p) for n, p in (groups or {}).items()])


def off(name: str, vcpus: int = 8, memory_mb: int = 8192) -> Host:
    return host(name, vcpus, memory_mb, state=HostState.OFF)
