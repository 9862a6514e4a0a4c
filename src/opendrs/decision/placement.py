"""A virtual view of the cluster in which each placement consumes resources at
once, as Nova's FilterScheduler does, so a batch of moves never double-books a
host. Checkpoints let a search try placements and take them back exactly."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from opendrs.decision.filters import HostFilter, PlacementRequest
from opendrs.decision.host_view import HostView
from opendrs.decision.weighers import HostWeigher, weigh
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import NotFound
from opendrs.domain.instance import Instance


@dataclass(frozen=True, slots=True)
class Ranking:
    """The outcome of filtering and weighing the hosts for one instance."""

    candidates: tuple[tuple[str, float], ...]
    rejections: dict[str, str]

    @property
    def best(self) -> str | None:
        return self.candidates[0][0] if self.candidates else None


@dataclass(frozen=True, slots=True)
class _Step:
    instance: Instance
    previous_host: str | None
    resident: Instance | None
    previous_views: tuple[HostView, ...]


class Placement:
    def __init__(
        self,
        cluster: Cluster,
        filters: Sequence[HostFilter],
        weighers: Sequence[HostWeigher] = (),
        candidates: Collection[str] | None = None,
    ) -> None:
        """`candidates` limits the destinations considered (an audit's scope);
        every host of the cluster still counts for group policies."""
        self._cluster = cluster
        self._filters = list(filters)
        self._weighers = list(weighers)
        by_host: dict[str, dict[str, Instance]] = {name: {} for name in cluster.hosts}
        for instance in cluster.instances.values():
            if instance.host in by_host:
                by_host[instance.host][instance.name] = instance
        self._residents = by_host
        self._location: dict[str, str] = {
            i.name: i.host for i in cluster.instances.values() if i.host in by_host
        }
        self._views = {
            name: HostView.of(host, by_host[name].values()) for name, host in cluster.hosts.items()
        }
        self._group_sizes: dict[str, int] = {}
        for instance in cluster.instances.values():
            for group in instance.groups:
                self._group_sizes[group] = self._group_sizes.get(group, 0) + 1
        self._journal: list[_Step] = []
        wanted = cluster.hosts.keys() if candidates is None else candidates
        unknown = sorted(h for h in wanted if h not in cluster.hosts)
        if unknown:
            raise NotFound("host", ", ".join(unknown))
        self._candidates = sorted(wanted)

    def view(self, host: str) -> HostView:
        try:
            return self._views[host]
        except KeyError:
            raise NotFound("host", host) from None

    def views(self) -> list[HostView]:
        return [self._views[name] for name in sorted(self._views)]

    def location(self, instance: str) -> str | None:
        return self._location.get(instance)

    def instances_on(self, host: str) -> list[Instance]:
        """The instances on `host` now, in the virtual state, ordered by name."""
        residents = self._residents.get(host, {})
        return [residents[name] for name in sorted(residents)]

    def cpu_percent(self, host: str) -> float:
        return self.view(host).cpu_percent

    @property
    def candidates(self) -> list[str]:
        """The destinations this placement considers, by name."""
        return list(self._candidates)

    def request_for(
        self, instance: Instance, source: str | None = None, with_group: bool = False
    ) -> PlacementRequest:
        where = source if source is not None else self._location.get(instance.name, "")
        if not instance.groups:
            # The common case, kept cheap: most instances belong to no group.
            return PlacementRequest(source=where, with_group=with_group)
        groups = self._cluster.groups
        here = self._location.get(instance.name)
        on_source = self._views[where].group_members if where in self._views else {}
        away: dict[str, int] = {}
        for g in instance.groups:
            siblings = self._group_sizes.get(g, 0) - (1 if here is not None else 0)
            beside = on_source.get(g, 0) - (1 if here == where else 0)
            away[g] = max(0, siblings - beside)
        return PlacementRequest(
            source=where,
            group_policies={g: groups[g].policy for g in instance.groups if g in groups},
            group_sizes={g: self._group_sizes.get(g, 0) for g in instance.groups},
            group_away=away,
            with_group=with_group,
        )

    def rank(
        self, instance: Instance, source: str | None = None, with_group: bool = False
    ) -> Ranking:
        """Every host either passes all filters (and is weighed) or is rejected by
        the first filter that refuses it, with that filter's reason."""
        request = self.request_for(instance, source, with_group)
        passed: list[HostView] = []
        rejections: dict[str, str] = {}
        for name in self._candidates:
            view = self._views[name]
            reason = self._first_refusal(view, instance, request)
            if reason is None:
                passed.append(view)
            else:
                rejections[name] = reason
        ranked = weigh(passed, instance, self._weighers)
        return Ranking(tuple((v.name, w) for v, w in ranked), rejections)

    def refusal(
        self, instance: Instance, host: str, source: str | None = None, with_group: bool = False
    ) -> str | None:
        """Why `host` may not take `instance` now (None: it may), by the same filters."""
        request = self.request_for(instance, source, with_group)
        return self._first_refusal(self.view(host), instance, request)

    def _first_refusal(
        self, view: HostView, instance: Instance, request: PlacementRequest
    ) -> str | None:
        for host_filter in self._filters:
            reason = host_filter.passes(view, instance, request)
            if reason is not None:
                return reason
        return None

    def choose_destination(
        self, instance: Instance, source: str | None = None
    ) -> tuple[str | None, dict[str, str]]:
        ranking = self.rank(instance, source)
        return ranking.best, ranking.rejections

    def place(self, instance: Instance, host: str) -> None:
        """Move `instance` (from wherever it is now, if anywhere) onto `host`."""
        target = self.view(host)
        previous = self._location.get(instance.name)
        if previous == host:
            return
        old_views: tuple[HostView, ...] = (target,)
        resident: Instance | None = None
        if previous is not None:
            resident = self._residents[previous].pop(instance.name)
            source_view = self._views[previous]
            old_views = (source_view, target)
            self._views[previous] = source_view.without_instance(resident)
        self._residents[host][instance.name] = instance
        self._location[instance.name] = host
        self._views[host] = target.with_instance(instance)
        self._journal.append(_Step(instance, previous, resident, old_views))

    def checkpoint(self) -> int:
        return len(self._journal)

    def rollback(self, mark: int) -> None:
        """Undo every placement made since `checkpoint()` returned `mark`."""
        while len(self._journal) > mark:
            step = self._journal.pop()
            name = step.instance.name
            current = self._location[name]
            del self._residents[current][name]
            if step.previous_host is None:
                del self._location[name]
            else:
                self._location[name] = step.previous_host
                self._residents[step.previous_host][name] = step.resident or step.instance
            for view in step.previous_views:
                self._views[view.name] = view

    def cluster(self) -> Cluster:
        """The cluster as it would be after every placement made so far."""
        moved = {
            name: replace(instance, host=self._location[name])
            for name, instance in self._cluster.instances.items()
            if self._location.get(name, instance.host) != instance.host
        }
        if not moved:
            return self._cluster
        return replace(self._cluster, instances={**self._cluster.instances, **moved})
