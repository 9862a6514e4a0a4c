"""What every audit may say besides its goal: the scope (hosts, zones, aggregates),
the aggressivity (migration and byte budgets, whether soft rules may bend) and the
anti-ping-pong list; and how those become filters, weighers and holds."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from opendrs.decision.filters import HostFilter, SoftServerGroupFilter, capacity_filters
from opendrs.decision.weighers import WeigherContext
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidInput
from opendrs.domain.instance import Instance, InstanceState

MB = 1024 * 1024
REJECTIONS_SHOWN = 8
# Weighers every strategy applies unless its weights name them: Nova's soft
# server-group weighers, and the penalty on hosts that were just churned.
IMPLICIT_WEIGHTS: Mapping[str, float] = {
    "soft_affinity": 1.0,
    "soft_anti_affinity": 1.0,
    "recently_moved": 0.5,
}


@dataclass(frozen=True, slots=True)
class AuditParameters:
    """Parameters every built-in strategy accepts.

    scope: host names, or `zone:NAME` / `aggregate:NAME` entries (empty: all hosts).
    max_migrations, max_bytes_moved: 0 means no limit; bytes are the memory of
    the moved instances. soft_rules_may_bend: False holds soft server-group
    policies as hard ones. recently_moved: instances moved within the
    anti-ping-pong window, left alone unless a hard rule needs them to move.
    recent_host_moves: migrations each host saw in that window (a weigher input).
    """

    scope: tuple[str, ...] = ()
    max_migrations: int = 0
    max_bytes_moved: int = 0
    soft_rules_may_bend: bool = True
    recently_moved: tuple[str, ...] = ()
    recent_host_moves: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("max_migrations", "max_bytes_moved"):
            if getattr(self, name) < 0:
                raise InvalidInput(
                    f"must be 0 (no limit) or more, got {getattr(self, name)}",
                    field=f"parameters.{name}",
                )


def resolve_scope(cluster: Cluster, scope: Sequence[str], source: str = "") -> list[str]:
    """The host names an audit may touch, sorted; unknown names are errors."""
    if not scope:
        return sorted(cluster.hosts)
    chosen: set[str] = set()
    for entry in scope:
        kind, sep, value = entry.partition(":")
        if sep and kind in ("zone", "aggregate"):
            if kind == "zone":
                found = {h.name for h in cluster.hosts.values() if h.availability_zone == value}
            else:
                found = {h.name for h in cluster.hosts.values() if value in h.aggregates}
            if not found:
                raise InvalidInput(
                    f"no host is in {kind} {value!r}", source=source, field="parameters.scope"
                )
            chosen |= found
        elif entry in cluster.hosts:
            chosen.add(entry)
        else:
            raise InvalidInput(
                f"unknown host {entry!r} (write zone:NAME or aggregate:NAME for those)",
                source=source,
                field="parameters.scope",
            )
    return sorted(chosen)


def check_hosts(cluster: Cluster, hosts: Collection[str], field: str, source: str) -> None:
    unknown = sorted(h for h in hosts if h not in cluster.hosts)
    if unknown:
        raise InvalidInput(
            f"unknown host(s) {', '.join(unknown)}", source=source, field=f"parameters.{field}"
        )


def placement_filters(parameters: AuditParameters) -> list[HostFilter]:
    filters = capacity_filters()
    if not parameters.soft_rules_may_bend:
        filters.append(SoftServerGroupFilter())
    return filters


def weigher_context(cluster: Cluster, parameters: AuditParameters) -> WeigherContext:
    return WeigherContext(
        group_policies={name: g.policy for name, g in cluster.groups.items()},
        recent_host_moves=dict(parameters.recent_host_moves),
    )


def with_implicit_weights(weights: Mapping[str, float]) -> dict[str, float]:
    return {**IMPLICIT_WEIGHTS, **weights}


def hold_reason(instance: Instance, parameters: AuditParameters, *, hard: bool = False) -> str:
    """Why an optimisation leaves `instance` where it is ('' when it may move).
    `hard` is set when a hard rule (an evacuation) requires the move, which
    overrides the anti-ping-pong hold but never never_migrate."""
    if not instance.movable:
        return "marked never_migrate"
    if instance.state not in (InstanceState.ACTIVE, InstanceState.STOPPED):
        return f"{instance.state.value}, so it cannot migrate"
    if not hard and instance.name in parameters.recently_moved:
        return "moved recently (anti-ping-pong)"
    return ""


@dataclass(slots=True)
class MoveBudget:
    """An audit's aggressivity: how many migrations and how many bytes it may spend."""

    max_migrations: int = 0
    max_bytes: int = 0
    migrations: int = 0
    bytes_moved: int = 0

    @staticmethod
    def of(parameters: AuditParameters) -> MoveBudget:
        return MoveBudget(parameters.max_migrations, parameters.max_bytes_moved)

    def refusal(self, instances: Sequence[Instance]) -> str:
        """Why moving all of `instances` would break the budget ('' when it fits)."""
        count = self.migrations + len(instances)
        if self.max_migrations and count > self.max_migrations:
            return f"the audit may plan at most {self.max_migrations} migration(s)"
        size = self.bytes_moved + sum(i.memory_mb * MB for i in instances)
        if self.max_bytes and size > self.max_bytes:
            return f"the audit may move at most {self.max_bytes} bytes of memory"
        return ""

    def spend(self, instances: Sequence[Instance]) -> None:
        self.migrations += len(instances)
        self.bytes_moved += sum(i.memory_mb * MB for i in instances)


def rejections_text(rejections: Mapping[str, str], skip: str = "") -> str:
    shown = [f"{h} ({why})" for h, why in sorted(rejections.items()) if h != skip]
    if not shown:
        return "none"
    extra = len(shown) - REJECTIONS_SHOWN
    text = "; ".join(shown[:REJECTIONS_SHOWN])
    return f"{text}; and {extra} more" if extra > 0 else text
