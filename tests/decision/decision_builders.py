"""Builders for the decision tests: hosts and VMs with measured CPU, in domain values."""

from __future__ import annotations

from opendrs.domain.cluster import Cluster
from opendrs.domain.host import Host
from opendrs.domain.instance import Flavor, Instance, InstanceState


def node(name: str, vcpus: int = 16, memory_mb: int = 65536, **fields: object) -> Host:
    return Host(name=name, vcpus=vcpus, memory_mb=memory_mb, local_gb=500, **fields)  # type: ignore[arg-type]


def vm(
    name: str,
    on: str,
    vcpus: int = 2,
    memory_mb: int = 2048,
    cpu: float = 50.0,
    disk_gb: int = 20,
    never_migrate: bool = False,
    state: InstanceState = InstanceState.ACTIVE,
    groups: tuple[str, ...] = (),
) -> Instance:
    """`cpu` is cpu_util: percent of the VM's own vCPUs."""
    return Instance(
        name=name,
        host=on,
        flavor=Flavor(f"f{vcpus}-{memory_mb}-{disk_gb}", vcpus, memory_mb, disk_gb),
        state=state,
        groups=groups,
        metadata={"never_migrate": "true"} if never_migrate else {},
        metrics={"cpu_util": cpu},
    )


def cores(
    name: str, on: str, used: float, memory_mb: int = 2048, vcpus: int = 4, **kw: object
) -> Instance:
    """A VM measured at `used` host cores."""
    return vm(name, on, vcpus=vcpus, memory_mb=memory_mb, cpu=100.0 * used / vcpus, **kw)  # type: ignore[arg-type]


def applied(cluster: Cluster, moves: list[tuple[str, str]]) -> Cluster:
    for instance, destination in moves:
        cluster = cluster.move(instance, destination)
    return cluster
