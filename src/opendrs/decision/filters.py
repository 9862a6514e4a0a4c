"""Host filters in Nova's style: each one looks at a candidate host and an instance
and either lets the host through (None) or says why it is rejected."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from opendrs.decision.host_view import HostView
from opendrs.domain.host import HostState
from opendrs.domain.instance import GroupPolicy, Instance, InstanceState


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    """What the scheduler knows about one placement beyond the instance itself:
    where it comes from and the server groups it must respect (policy and size)."""

    source: str = ""
    group_policies: Mapping[str, GroupPolicy] = field(default_factory=dict)
    group_sizes: Mapping[str, int] = field(default_factory=dict)
    # Members of each group, this instance aside, that are not on the source.
    group_away: Mapping[str, int] | None = None
    # True when the instance's affinity siblings on the source move along with it
    # (the strategy places the whole group on one host).
    with_group: bool = False


class HostFilter(Protocol):
    @property
    def name(self) -> str: ...

    def passes(self, host: HostView, instance: Instance, request: PlacementRequest) -> str | None:
        """None when the host may take the instance, else the reason it may not."""
        ...


class VcpuFilter:
    name = "vcpu"

    def passes(self, host: HostView, instance: Instance, request: PlacementRequest) -> str | None:
        if instance.vcpus <= host.free_vcpus:
            return None
        h = host.host
        return (
            f"vcpu: needs {instance.vcpus}, {host.free_vcpus:g} free of {host.vcpu_capacity:g} "
            f"({h.vcpus} cores, {h.reserved_host_cpus} reserved, "
            f"allocation ratio {h.cpu_allocation_ratio:g})"
        )


class RamFilter:
    name = "ram"

    def passes(self, host: HostView, instance: Instance, request: PlacementRequest) -> str | None:
        if instance.memory_mb <= host.free_memory_mb:
            return None
        h = host.host
        return (
            f"ram: needs {instance.memory_mb} MB, {host.free_memory_mb:g} MB free of "
            f"{host.memory_capacity_mb:g} MB ({h.memory_mb} MB, {h.reserved_host_memory_mb} MB "
            f"reserved, allocation ratio {h.ram_allocation_ratio:g})"
        )


class DiskFilter:
    name = "disk"

    def passes(self, host: HostView, instance: Instance, request: PlacementRequest) -> str | None:
        # A volume-backed instance (no local disk) needs nothing here.
        if instance.disk_gb <= 0 or instance.disk_gb <= host.free_disk_gb:
            return None
        return (
            f"disk: needs {instance.disk_gb} GB, {host.free_disk_gb:g} GB free of "
            f"{host.disk_capacity_gb:g} GB"
        )


class HostStateFilter:
    """Only enabled hosts take new work."""

    name = "state"

    def passes(self, host: HostView, instance: Instance, request: PlacementRequest) -> str | None:
        h = host.host
        if h.state == HostState.ENABLED:
            return None
        why = f" ({h.disabled_reason})" if h.disabled_reason else ""
        return f"state: host is {h.state.value}{why}"


class NotSourceFilter:
    name = "source"

    def passes(self, host: HostView, instance: Instance, request: PlacementRequest) -> str | None:
        return "source: the instance is already here" if host.name == request.source else None


class AllowedHostsFilter:
    """Limits destinations to a named set (an audit's destinations parameter)."""

    name = "allowed"

    def __init__(self, hosts: Collection[str]) -> None:
        self._hosts = frozenset(hosts)

    def passes(self, host: HostView, instance: Instance, request: PlacementRequest) -> str | None:
        return None if host.name in self._hosts else "allowed: not among the allowed destinations"


class CpuHeadroomFilter:
    """The destination's measured CPU, with the instance's measured use added,
    must stay at or under `max_percent` of its cores."""

    name = "cpu_headroom"

    def __init__(self, max_percent: float) -> None:
        self.max_percent = max_percent

    def passes(self, host: HostView, instance: Instance, request: PlacementRequest) -> str | None:
        projected = host.cpu_percent_with(instance.cpu_cores_used)
        # The tolerance absorbs float sums: landing exactly on the limit is allowed.
        if projected <= self.max_percent + 1e-9:
            return None
        return (
            f"cpu_headroom: would reach {projected:.1f}% (now {host.cpu_percent:.1f}%, "
            f"+{instance.cpu_cores_used:.2f} cores), over {self.max_percent:g}%"
        )


def _affinity_problem(
    host: HostView, group: str, request: PlacementRequest, kind: str
) -> str | None:
    here = host.group_members.get(group, 0)
    if here > 0:
        return None
    siblings = request.group_sizes.get(group, 0) - 1
    if siblings <= 0:
        return None
    away = siblings if request.group_away is None else request.group_away.get(group, 0)
    if away > 0:
        return f"server_group: {kind} group {group} has its members elsewhere"
    if request.with_group:
        # The siblings all sit on the source and follow this instance here.
        return None
    return (
        f"server_group: {kind} group {group} would be split (its members stay on "
        f"{request.source or 'their host'}; they move together or not at all)"
    )


class ServerGroupFilter:
    """Hard server-group policies: no two members of an anti-affinity group on one
    host; a member of an affinity group only where its siblings are, or with them."""

    name = "server_group"

    def passes(self, host: HostView, instance: Instance, request: PlacementRequest) -> str | None:
        for group in instance.groups:
            policy = request.group_policies.get(group)
            if policy == GroupPolicy.ANTI_AFFINITY and host.group_members.get(group, 0) > 0:
                return f"server_group: anti-affinity group {group} already has a member here"
            if policy == GroupPolicy.AFFINITY:
                problem = _affinity_problem(host, group, request, "affinity")
                if problem:
                    return problem
        return None


class SoftServerGroupFilter:
    """Soft server-group policies held as if they were hard: used when an audit
    says soft rules may not bend (otherwise the soft weighers only prefer them)."""

    name = "soft_server_group"

    def passes(self, host: HostView, instance: Instance, request: PlacementRequest) -> str | None:
        for group in instance.groups:
            policy = request.group_policies.get(group)
            if policy == GroupPolicy.SOFT_ANTI_AFFINITY and host.group_members.get(group, 0) > 0:
                return (
                    f"soft_server_group: soft-anti-affinity group {group} already has a "
                    "member here (soft rules may not bend)"
                )
            if policy == GroupPolicy.SOFT_AFFINITY:
                problem = _affinity_problem(host, group, request, "soft-affinity")
                if problem:
                    return problem.replace("server_group:", "soft_server_group:", 1)
        return None


class NeverMigrateFilter:
    """An instance marked never_migrate (metadata) has no destination at all."""

    name = "never_migrate"

    def passes(self, host: HostView, instance: Instance, request: PlacementRequest) -> str | None:
        return None if instance.movable else "never_migrate: the instance is marked never_migrate"


class InstanceStateFilter:
    """Only active (live) and stopped (cold) instances can be migrated."""

    name = "instance_state"

    def passes(self, host: HostView, instance: Instance, request: PlacementRequest) -> str | None:
        if instance.state in (InstanceState.ACTIVE, InstanceState.STOPPED):
            return None
        return f"instance_state: the instance is {instance.state.value}; it cannot migrate"


class AvailabilityZoneFilter:
    """An instance pinned to an availability zone (metadata `availability_zone`)
    only goes to hosts of that zone."""

    name = "availability_zone"

    def passes(self, host: HostView, instance: Instance, request: PlacementRequest) -> str | None:
        zone = instance.metadata.get("availability_zone")
        if not zone or host.host.availability_zone == zone:
            return None
        return (
            f"availability_zone: the instance is pinned to zone {zone}, the host is in "
            f"{host.host.availability_zone}"
        )


class AggregateFilter:
    """An instance that names aggregates (metadata `aggregate`, comma-separated)
    only goes to hosts in one of them, as Nova's aggregate isolation does."""

    name = "aggregate"

    def passes(self, host: HostView, instance: Instance, request: PlacementRequest) -> str | None:
        wanted = instance.metadata.get("aggregate")
        if not wanted:
            return None
        names = {part.strip() for part in wanted.split(",") if part.strip()}
        if names & set(host.host.aggregates):
            return None
        member_of = ", ".join(host.host.aggregates) or "no aggregate"
        return (
            f"aggregate: the instance needs {', '.join(sorted(names))}, the host is in {member_of}"
        )


def capacity_filters() -> list[HostFilter]:
    """The filters every move must pass, whatever the strategy wants on top."""
    return [
        NeverMigrateFilter(),
        InstanceStateFilter(),
        HostStateFilter(),
        NotSourceFilter(),
        AvailabilityZoneFilter(),
        AggregateFilter(),
        VcpuFilter(),
        RamFilter(),
        DiskFilter(),
        ServerGroupFilter(),
    ]
