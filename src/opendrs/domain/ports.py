"""The ports: Protocols the core talks to and the adapters implement
(cloud drivers, the bus, the SQL repositories)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from opendrs.domain.action import Action, ActionPlan, PlanState
from opendrs.domain.alarm import Alarm, AlarmTransition
from opendrs.domain.audit import Audit, AuditState
from opendrs.domain.counters import HostCounters, InstanceCounters
from opendrs.domain.evacuation import EvacuationMark
from opendrs.domain.event import Event
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Instance, ServerGroup

# --- cloud ---------------------------------------------------------------


class OperationState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Operation:
    """A long-running driver call (a live migration) and how it is going."""

    id: str
    state: OperationState
    message: str = ""


class CloudInventory(Protocol):
    def list_hosts(self) -> list[Host]: ...

    def list_instances(self) -> list[Instance]: ...


@runtime_checkable
class GroupInventory(CloudInventory, Protocol):
    """A cloud that also keeps server groups (Nova): a refresh stores them too."""

    def list_groups(self) -> list[ServerGroup]: ...


@runtime_checkable
class PartialHostInventory(CloudInventory, Protocol):
    """A cloud that knows only part of a host (libvirt: its capacity and use), the
    rest (state, allocation ratios, reservations) being opendrs's own record:
    a refresh writes `host_fields` alone, so a state set meanwhile is kept."""

    host_fields: frozenset[str]


class StatsSource(Protocol):
    """What an agent polls on its own host."""

    def host_counters(self, host: str) -> HostCounters: ...

    def instance_counters(self, host: str) -> list[InstanceCounters]: ...


class CloudActions(Protocol):
    def start_migration(self, instance: str, destination: str, live: bool = True) -> str:
        """Start moving `instance`; returns an operation id. Raises DriverError."""
        ...

    def operation(self, operation_id: str) -> Operation: ...

    def locate(self, instance: str) -> str | None:
        """The host an instance runs on now (None if it is gone): used to reconcile."""
        ...

    def set_host_state(self, host: str, state: HostState, reason: str | None = None) -> None: ...


@runtime_checkable
class OperationFinder(Protocol):
    """Optional for a CloudActions driver: lets the applier find a migration it
    started but could not journal before a crash, so it never starts it twice."""

    def running_operation(self, instance: str) -> Operation | None:
        """The migration of `instance` still running, if any."""
        ...


@runtime_checkable
class OperationAborter(Protocol):
    """Optional for a CloudActions driver: stop a running migration (the VM stays on
    its source), used when an action times out or its plan is cancelled."""

    def abort_operation(self, operation_id: str) -> None:
        """Raises DriverError when the migration cannot be stopped (any more)."""
        ...


@dataclass(frozen=True, slots=True)
class HostOccupancy:
    """A host as the cloud reports it now (state, capacity, allocation ratios,
    reservations, Nova's reported use) and the instances running on it."""

    host: Host
    instances: tuple[Instance, ...] = ()


@runtime_checkable
class LiveView(Protocol):
    """Optional for a CloudActions driver: the cloud as it is right now, read by the
    applier just before a migration starts (the plan was made on an older model)."""

    def instance_now(self, instance: str) -> Instance | None:
        """The instance with its host, flavor and state (None if it is gone)."""
        ...

    def host_now(self, host: str) -> HostOccupancy:
        """The host and what runs on it. Raises NotFound for a host the cloud does
        not know, DriverError when it cannot tell."""
        ...


class CloudDriver(CloudInventory, StatsSource, CloudActions, Protocol):
    """Everything a cloud offers opendrs."""


# --- bus -----------------------------------------------------------------

Handler = Callable[[Event], None]


class Subscription(Protocol):
    def close(self) -> None: ...


class Bus(Protocol):
    """Publish/subscribe of Events by subject; `*` matches one token, `>` the rest."""

    def publish(self, subject: str, event: Event) -> None: ...

    def subscribe(self, pattern: str, handler: Handler, group: str = "") -> Subscription:
        """Every subscription of a pattern gets each message; subscriptions sharing a
        `group` share the messages (one member gets each), and a named group is durable
        on the transports that can be (it gets what was published while it was away)."""
        ...

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until what was published before the call has been handled by this bus's
        subscriptions; False if that did not happen within `timeout` seconds."""
        ...

    def close(self) -> None: ...


# --- repositories --------------------------------------------------------


class ClusterRepository(Protocol):
    def upsert_hosts(self, hosts: Sequence[Host], fields: Collection[str] | None = None) -> None:
        """Insert or replace hosts (metrics merged). With `fields`, a host already
        stored changes only those fields, in the same statement (no read before)."""
        ...

    def upsert_instances(self, instances: Sequence[Instance]) -> None: ...

    def remove_instances_not_in(self, names: Sequence[str]) -> int: ...

    def upsert_groups(self, groups: Sequence[ServerGroup]) -> None: ...

    def update_metrics(self, entity: str, metrics: dict[str, float]) -> None:
        """Merge the latest metric values of a host or an instance."""
        ...

    def update_many_metrics(self, latest: Mapping[str, Mapping[str, float]]) -> None:
        """`update_metrics` for many entities at once (one poll's worth)."""
        ...

    def get_host(self, name: str) -> Host: ...

    def list_hosts(self) -> list[Host]: ...

    def list_instances(self, host: str | None = None) -> list[Instance]: ...

    def list_groups(self) -> list[ServerGroup]: ...


class AlarmRepository(Protocol):
    def record(self, transition: AlarmTransition) -> None:
        """Save the transition in the history and the alarm's current state."""
        ...

    def list_alarms(self, include_ok: bool = False) -> list[Alarm]: ...

    def history(self, limit: int = 100) -> list[AlarmTransition]: ...


class CepStateRepository(Protocol):
    """The CEP engine's per (rule, series) state, so a restart resumes it."""

    def save_cep_state(
        self, changed: Sequence[Mapping[str, Any]], removed: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Upsert changed entries (each has `rule` and `entity`), delete removed keys."""
        ...

    def load_cep_state(self) -> list[dict[str, Any]]: ...


class AuditRepository(Protocol):
    def save_audit(self, audit: Audit) -> None: ...

    def get_audit(self, audit_id: str) -> Audit: ...

    def list_audits(self, limit: int = 100) -> list[Audit]: ...

    def list_scheduled_audits(self) -> list[Audit]:
        """The continuous audits with a next run (ONGOING or SUSPENDED), oldest first."""
        ...

    def claim_audit_run(self, audit_id: str, due: float, ran: Audit) -> bool:
        """Store `ran`'s run times if the audit is still ONGOING and still due at
        `due` (no one else ran it meanwhile), in one transaction; False otherwise."""
        ...

    def change_audit(
        self, audit_id: str, state: AuditState | None = None, message: str | None = None
    ) -> Audit:
        """Move the stored audit to `state` (checked against its stored state in the
        same transaction) and/or set its message; the run times are kept as stored,
        except that an ended audit has no next run. Raises NotFound, InvalidTransition."""
        ...


class PlanRepository(Protocol):
    """Plans and the journal of their actions: every action write is durable."""

    def save_plan(self, plan: ActionPlan) -> None: ...

    def get_plan(self, plan_id: str) -> ActionPlan: ...

    def list_plans(
        self, states: Sequence[PlanState] | None = None, limit: int = 100
    ) -> list[ActionPlan]: ...

    def set_plan_state(self, plan_id: str, state: PlanState, message: str = "") -> None: ...

    def journal_action(self, action: Action) -> None:
        """Persist one action's new state (the applier's journal)."""
        ...


@runtime_checkable
class LeaseRepository(Protocol):
    """Optional for a PlanRepository: exclusive leases on named resources (`host:NAME`,
    `instance:NAME`), so two plans never touch the same VM or host at once."""

    def acquire_leases(self, owner: str, resources: Sequence[str]) -> dict[str, str]:
        """Take all of `resources` for `owner` or none of them; returns the ones other
        owners hold ({resource: owner}), empty when granted. Idempotent per owner."""
        ...

    def release_leases(self, owner: str) -> int:
        """Give back everything `owner` holds; returns how many."""
        ...

    def list_leases(self) -> dict[str, str]:
        """Every lease: {resource: owner}."""
        ...


class EvacuationRepository(Protocol):
    """Evacuation marks: which host each instance was evacuated from for maintenance,
    so the way back knows what to bring home."""

    def record_evacuations(self, marks: Sequence[EvacuationMark]) -> None:
        """Store the marks; an instance's new mark replaces its old one (the latest
        evacuation wins)."""
        ...

    def list_evacuations(self, host: str | None = None) -> list[EvacuationMark]:
        """Every mark (or those of instances evacuated from `host`), sorted by instance."""
        ...

    def clear_evacuations(self, instances: Sequence[str], host: str | None = None) -> int:
        """Drop the marks of `instances` (only those evacuated from `host` when it is
        given); returns how many went."""
        ...
