"""One host as the scheduler sees it while placing instances: its capacity after
allocation ratios and reservations, and what is used of it, by flavor and measured."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from opendrs.domain.host import Host
from opendrs.domain.instance import Instance


@dataclass(frozen=True, slots=True)
class HostView:
    host: Host
    vcpus_used: int = 0
    memory_mb_used: int = 0
    disk_gb_used: int = 0
    cpu_cores_used: float = 0.0
    group_members: Mapping[str, int] = field(default_factory=dict)
    instance_count: int = 0

    @staticmethod
    def of(host: Host, instances: Iterable[Instance]) -> HostView:
        """The host with `instances` on it. Nova's reported use is kept when it is
        larger: instances outside the model (another scope, another project) still
        hold their share."""
        residents = list(instances)
        members: dict[str, int] = {}
        for instance in residents:
            for group in instance.groups:
                members[group] = members.get(group, 0) + 1
        return HostView(
            host=host,
            vcpus_used=max(host.vcpus_used, sum(i.vcpus for i in residents)),
            memory_mb_used=max(host.memory_mb_used, sum(i.memory_mb for i in residents)),
            disk_gb_used=max(host.local_gb_used, sum(i.disk_gb for i in residents)),
            cpu_cores_used=sum(i.cpu_cores_used for i in residents),
            group_members=members,
            instance_count=len(residents),
        )

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def vcpu_capacity(self) -> float:
        return self.host.allocatable_vcpus

    @property
    def memory_capacity_mb(self) -> float:
        return self.host.allocatable_memory_mb

    @property
    def disk_capacity_gb(self) -> float:
        return self.host.allocatable_disk_gb

    @property
    def free_vcpus(self) -> float:
        return self.vcpu_capacity - self.vcpus_used

    @property
    def free_memory_mb(self) -> float:
        return self.memory_capacity_mb - self.memory_mb_used

    @property
    def free_disk_gb(self) -> float:
        return self.disk_capacity_gb - self.disk_gb_used

    @property
    def cpu_percent(self) -> float:
        """Measured CPU demand in percent of the host's physical cores."""
        return self.cpu_percent_with(0.0)

    def cpu_percent_with(self, extra_cores: float) -> float:
        cores = self.host.vcpus
        if cores <= 0:
            # As Cluster.cpu_percent: a host without cores has no load to speak of
            # (and the vcpu filter keeps everything off it).
            return 0.0
        return 100.0 * (self.cpu_cores_used + extra_cores) / cores

    def with_instance(self, instance: Instance) -> HostView:
        return self._shifted(instance, 1)

    def without_instance(self, instance: Instance) -> HostView:
        return self._shifted(instance, -1)

    def _shifted(self, instance: Instance, sign: int) -> HostView:
        members = self.group_members
        if instance.groups:
            members = dict(members)
            for group in instance.groups:
                count = members.get(group, 0) + sign
                if count > 0:
                    members[group] = count
                else:
                    members.pop(group, None)
        # Built directly rather than by dataclasses.replace: this runs once per
        # placement and rollback, 100,000 times in a large consolidation.
        return HostView(
            self.host,
            self.vcpus_used + sign * instance.vcpus,
            self.memory_mb_used + sign * instance.memory_mb,
            self.disk_gb_used + sign * instance.disk_gb,
            max(0.0, self.cpu_cores_used + sign * instance.cpu_cores_used),
            members,
            max(0, self.instance_count + sign),
        )
