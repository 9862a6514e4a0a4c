"""A snapshot of the cluster model: hosts, instances and server groups together,
with the derived views the decision engine and planner need."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from opendrs.domain.host import Host
from opendrs.domain.instance import Instance, ServerGroup


@dataclass(frozen=True, slots=True)
class Cluster:
    hosts: Mapping[str, Host]
    instances: Mapping[str, Instance]
    groups: Mapping[str, ServerGroup] = field(default_factory=dict)

    @staticmethod
    def of(
        hosts: Iterable[Host],
        instances: Iterable[Instance],
        groups: Iterable[ServerGroup] = (),
    ) -> Cluster:
        return Cluster(
            hosts={h.name: h for h in hosts},
            instances={i.name: i for i in instances},
            groups={g.name: g for g in groups},
        )

    def instances_on(self, host: str) -> list[Instance]:
        return [i for i in self.instances.values() if i.host == host]

    def cpu_cores_used(self, host: str) -> float:
        """Measured CPU demand on a host, in cores, summed over its instances."""
        return sum(i.cpu_cores_used for i in self.instances_on(host))

    def cpu_percent(self, host: str) -> float:
        h = self.hosts[host]
        return 100.0 * self.cpu_cores_used(host) / h.vcpus if h.vcpus else 0.0

    def move(self, instance: str, destination: str) -> Cluster:
        """The cluster after `instance` has moved to `destination`."""
        moved = replace(self.instances[instance], host=destination)
        return replace(self, instances={**self.instances, instance: moved})
