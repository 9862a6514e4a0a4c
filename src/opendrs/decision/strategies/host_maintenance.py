"""Host maintenance: put a host into maintenance and evacuate it, to the named
backup host (enabled first when it is not) or to the best destinations the
filters and weighers find; and the way back once the host is enabled again."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from opendrs.decision.parameters import parse_parameters
from opendrs.decision.placement import Placement
from opendrs.decision.policy import (
    AuditParameters,
    MoveBudget,
    check_hosts,
    hold_reason,
    placement_filters,
    rejections_text,
    resolve_scope,
    weigher_context,
    with_implicit_weights,
)
from opendrs.decision.units import place_unit, place_unit_best, units_of
from opendrs.decision.weighers import weighers_from
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidInput
from opendrs.domain.evacuation import EVACUATED_FROM
from opendrs.domain.host import HostState
from opendrs.domain.instance import Instance
from opendrs.domain.solution import HostChange, Move, Solution

GOAL = "host_maintenance"
__all__ = ["EVACUATED_FROM", "GOAL", "HostMaintenance", "HostReturn"]


@dataclass(frozen=True, slots=True)
class HostMaintenanceParameters(AuditParameters):
    maintenance_node: str = ""
    backup_node: str = ""
    backup_only: bool = False
    weights: Mapping[str, float] = field(default_factory=lambda: {"free_ram": 1.0, "cpu_load": 1.0})

    def __post_init__(self) -> None:
        AuditParameters.__post_init__(self)
        if not self.maintenance_node:
            raise InvalidInput(
                "a maintenance_node is required", field="parameters.maintenance_node"
            )
        if self.backup_node == self.maintenance_node:
            raise InvalidInput(
                "the backup_node cannot be the maintenance_node", field="parameters.backup_node"
            )
        if self.backup_only and not self.backup_node:
            raise InvalidInput("backup_only needs a backup_node", field="parameters.backup_only")
        weighers_from(with_implicit_weights(self.weights))


@dataclass(frozen=True, slots=True)
class HostReturnParameters(AuditParameters):
    maintenance_node: str = ""
    instances: tuple[str, ...] = ()
    # Ending maintenance is the operator's call: without it a host still disabled or
    # in maintenance gets nothing back (the event of a host enabled again sets it).
    enable_node: bool = False

    def __post_init__(self) -> None:
        AuditParameters.__post_init__(self)
        if not self.maintenance_node:
            raise InvalidInput(
                "a maintenance_node is required", field="parameters.maintenance_node"
            )


class HostMaintenance:
    name: ClassVar[str] = "host_maintenance"
    goal: ClassVar[str] = GOAL
    display_name: ClassVar[str] = "Evacuate a host for maintenance"
    parameters_type: ClassVar[type[HostMaintenanceParameters]] = HostMaintenanceParameters

    def __init__(self, parameters: HostMaintenanceParameters) -> None:
        self.parameters = parameters

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> HostMaintenance:
        return cls(
            parse_parameters(
                HostMaintenanceParameters, parameters, source="strategy host_maintenance"
            )
        )

    def execute(self, cluster: Cluster) -> Solution:
        p = self.parameters
        source = f"strategy {self.name}"
        node, backup = p.maintenance_node, p.backup_node
        check_hosts(cluster, [node], "maintenance_node", source)
        if backup:
            check_hosts(cluster, [backup], "backup_node", source)
        changes: list[HostChange] = []
        explanations: list[str] = []
        virtual = cluster
        if cluster.hosts[node].state != HostState.MAINTENANCE:
            changes.append(HostChange(node, HostState.MAINTENANCE, f"{node} goes into maintenance"))
            virtual = _with_state(virtual, node, HostState.MAINTENANCE)
        backup_enabled = False
        if backup and cluster.hosts[backup].state != HostState.ENABLED:
            was = cluster.hosts[backup].state.value
            changes.append(
                HostChange(backup, HostState.ENABLED, f"backup {backup} is enabled (was {was})")
            )
            virtual = _with_state(virtual, backup, HostState.ENABLED)
            backup_enabled = True
        destinations = [h for h in resolve_scope(cluster, p.scope, source) if h != node]
        if p.backup_only:
            destinations = [backup]
        elif backup and backup not in destinations:
            destinations.append(backup)
        placement = Placement(
            virtual,
            placement_filters(p),
            weighers_from(with_implicit_weights(p.weights), weigher_context(cluster, p)),
            candidates=destinations,
        )
        budget = MoveBudget.of(p)
        moves: list[Move] = []
        stuck: list[str] = []
        residents = placement.instances_on(node)
        units = units_of(residents, cluster, soft_is_hard=not p.soft_rules_may_bend)
        # The hardest units first: the largest memory has the fewest homes.
        units.sort(key=lambda u: (-sum(i.memory_mb for i in u), u[0].name))
        for unit in units:
            names = ", ".join(i.name for i in unit)
            held = [(i.name, hold_reason(i, p, hard=True)) for i in unit]
            held = [(n, why) for n, why in held if why]
            if held:
                stuck.extend(i.name for i in unit)
                explanations.append(
                    f"{names} cannot leave {node}: " + "; ".join(f"{n} is {why}" for n, why in held)
                )
                continue
            over = budget.refusal(unit)
            if over:
                stuck.extend(i.name for i in unit)
                explanations.append(f"{names} stays on {node}: {over}")
                continue
            moved = self._evacuate(placement, unit, node, backup)
            if isinstance(moved, str):
                stuck.extend(i.name for i in unit)
                explanations.append(f"{names} has no destination: {moved}")
                continue
            budget.spend(unit)
            moves.extend(moved)
        if backup_enabled and not any(m.destination == backup for m in moves):
            changes = [c for c in changes if c.host != backup]
        efficacy = {
            "instances_on_node": float(len(residents)),
            "instance_migrations_count": float(len(moves)),
            "live_migrations_count": float(sum(1 for m in moves if m.live)),
            "cold_migrations_count": float(sum(1 for m in moves if not m.live)),
            "unmovable_instances_count": float(len(stuck)),
            "memory_moved_mb": float(sum(cluster.instances[m.instance].memory_mb for m in moves)),
        }
        if not residents:
            explanations.append(f"{node} runs no instance; it only changes state")
        elif not stuck:
            explanations.append(f"{node} is fully evacuated by {len(moves)} migration(s)")
        else:
            explanations.append(
                f"{node} keeps {len(stuck)} instance(s): {', '.join(sorted(stuck))}"
            )
        return Solution(tuple(moves), tuple(changes), efficacy, tuple(explanations))

    def _evacuate(
        self, placement: Placement, unit: Sequence[Instance], node: str, backup: str
    ) -> list[Move] | str:
        """Moves for the unit (placed in the view), or why it found no destination."""
        first = unit[0]
        backup_refusal = ""
        if backup:
            refusal = place_unit(placement, unit, node, backup)
            if refusal is None:
                return [
                    _move(i, node, backup, f"the named backup host {backup} takes it") for i in unit
                ]
            backup_refusal = f"backup {backup} refused ({refusal})"
            if self.parameters.backup_only:
                return backup_refusal
        ranking = placement.rank(first, node, with_group=len(unit) > 1)
        order = [h for h, _ in ranking.candidates if h != backup]
        chosen, refused = place_unit_best(placement, unit, node, order)
        rejected = {**ranking.rejections, **refused}
        if chosen is None:
            text = rejections_text(rejected, node)
            return f"{backup_refusal}; {text}" if backup_refusal else text
        weight = dict(ranking.candidates)[chosen]
        why = (
            f"best of {len(ranking.candidates)} host(s) that passed the filters "
            f"(weight {weight:.3f})"
            + (f"; {backup_refusal}" if backup_refusal else "")
            + f". Rejected: {rejections_text(rejected, node)}"
        )
        return [_move(i, node, chosen, why) for i in unit]


class HostReturn:
    """The way back: once the host is out of maintenance (or with `enable_node`,
    which ends it), the instances that were evacuated from it (named, or carrying
    metadata evacuated_from) return."""

    name: ClassVar[str] = "host_return"
    goal: ClassVar[str] = GOAL
    display_name: ClassVar[str] = "Bring instances back after maintenance"
    parameters_type: ClassVar[type[HostReturnParameters]] = HostReturnParameters

    def __init__(self, parameters: HostReturnParameters) -> None:
        self.parameters = parameters

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> HostReturn:
        return cls(
            parse_parameters(HostReturnParameters, parameters, source="strategy host_return")
        )

    def execute(self, cluster: Cluster) -> Solution:
        p = self.parameters
        node = p.maintenance_node
        check_hosts(cluster, [node], "maintenance_node", f"strategy {self.name}")
        unknown = sorted(n for n in p.instances if n not in cluster.instances)
        if unknown:
            raise InvalidInput(
                f"unknown instance(s) {', '.join(unknown)}",
                source=f"strategy {self.name}",
                field="parameters.instances",
            )
        names = p.instances or tuple(
            sorted(
                n for n, i in cluster.instances.items() if i.metadata.get(EVACUATED_FROM) == node
            )
        )
        changes: list[HostChange] = []
        virtual = cluster
        state = cluster.hosts[node].state
        if state != HostState.ENABLED:
            if not p.enable_node:
                return Solution(
                    (),
                    (),
                    {"instances_to_return": float(len(names)), "instance_migrations_count": 0.0},
                    (
                        f"{node} is still {state.value}: nothing returns until it is "
                        "enabled (or the audit sets enable_node)",
                    ),
                )
            changes.append(HostChange(node, HostState.ENABLED, f"{node} is back from maintenance"))
            virtual = _with_state(virtual, node, HostState.ENABLED)
        placement = Placement(virtual, placement_filters(p), candidates=[node])
        budget = MoveBudget.of(p)
        moves: list[Move] = []
        explanations: list[str] = []
        for name in names:
            instance = cluster.instances[name]
            if instance.host == node:
                continue
            held = hold_reason(instance, p, hard=True)
            refusal = held or budget.refusal([instance]) or placement.refusal(instance, node)
            if refusal:
                explanations.append(f"{name} stays on {instance.host}: {refusal}")
                continue
            placement.place(instance, node)
            budget.spend([instance])
            moves.append(
                _move(instance, instance.host, node, f"it ran on {node} before maintenance")
            )
        if not names:
            explanations.append(f"no instance is recorded as evacuated from {node}")
        efficacy = {
            "instances_to_return": float(len(names)),
            "instance_migrations_count": float(len(moves)),
            "memory_moved_mb": float(sum(cluster.instances[m.instance].memory_mb for m in moves)),
        }
        return Solution(tuple(moves), tuple(changes), efficacy, tuple(explanations))


def _with_state(cluster: Cluster, host: str, state: HostState) -> Cluster:
    hosts = dict(cluster.hosts)
    hosts[host] = replace(hosts[host], state=state, disabled_reason=None)
    return replace(cluster, hosts=hosts)


def _move(instance: Instance, source: str, destination: str, why: str) -> Move:
    kind = "live" if instance.live else "cold (the instance is stopped)"
    return Move(
        instance.name,
        source,
        destination,
        live=instance.live,
        reason=(
            f"{instance.name} ({instance.vcpus} vCPU, {instance.memory_mb} MB) leaves {source} "
            f"by {kind} migration to {destination}: {why}"
        ),
    )
