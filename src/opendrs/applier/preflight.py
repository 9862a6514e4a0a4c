"""The last look before a migration starts: the cloud's live view of the instance and
its destination, judged by the decision engine's own host filters (the same
allocation ratios, reservations and state rules that chose the destination), with
the migrations already flying to that host counted on it as the planner counts them.
Says why a migration may not run, or that it has nothing left to do."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from opendrs.decision.filters import (
    DiskFilter,
    HostStateFilter,
    InstanceStateFilter,
    PlacementRequest,
    RamFilter,
    VcpuFilter,
)
from opendrs.decision.host_view import HostView
from opendrs.domain.action import Action, ActionState, ActionType
from opendrs.domain.errors import NotFound
from opendrs.domain.instance import Flavor, Instance
from opendrs.domain.ports import LiveView

_STATE = HostStateFilter()
_INSTANCE_STATE = InstanceStateFilter()
_CAPACITY = (VcpuFilter(), RamFilter(), DiskFilter())
_NO_REQUEST = PlacementRequest()


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the live view says of a migration about to start: `state` None means it
    may start; SUCCEEDED that it is already done; FAILED that it must not run."""

    state: ActionState | None
    message: str = ""


GO = Verdict(None)


def in_flight(action: Action) -> Instance:
    """A migration journaled ONGOING as the instance it brings to its destination,
    sized by what the planner recorded in its parameters."""
    p = action.parameters
    flavor = Flavor(
        "in-flight",
        int(p.get("vcpus", 0) or 0),
        int(p.get("memory_mb", 0) or 0),
        int(p.get("disk_gb", 0) or 0),
    )
    return Instance(str(p.get("instance", "")), str(p.get("destination", "")), flavor)


def arrivals(actions: Iterable[Action], destination: str, instance: str) -> list[Instance]:
    """The migrations among `actions` in flight to `destination`, but `instance`'s own."""
    found: list[Instance] = []
    for action in actions:
        if action.type != ActionType.MIGRATE or action.state != ActionState.ONGOING:
            continue
        p = action.parameters
        if p.get("destination") == destination and p.get("instance") != instance:
            found.append(in_flight(action))
    return found


def judge(
    view: LiveView, instance: str, source: str, destination: str, arriving: Iterable[Instance]
) -> Verdict:
    """Whether `instance` may move from `source` to `destination` now. The
    destination holds what runs there plus `arriving` (migrations in flight to it
    that the cloud does not list there yet); the instance's live flavor is what it
    needs. A DriverError of the view propagates; an unknown destination is a refusal."""
    found = view.instance_now(instance)
    if found is None:
        return Verdict(ActionState.FAILED, f"{instance} is gone; nothing to move to {destination}")
    if found.host == destination:
        return Verdict(ActionState.SUCCEEDED, f"{instance} is already on {destination}")
    if found.host != source:
        return Verdict(
            ActionState.FAILED,
            f"{instance} is on {found.host}, expected on source {source}; not moved",
        )
    try:
        target = view.host_now(destination)
    except NotFound:
        return Verdict(
            ActionState.FAILED,
            f"destination {destination} is no longer in the cloud; {instance} not moved",
        )
    residents = [i for i in target.instances if i.name != instance]
    listed = {i.name for i in residents}
    coming = [a for a in arriving if a.name not in listed]
    room = HostView.of(target.host, residents + coming)
    stuck = _INSTANCE_STATE.passes(room, found, _NO_REQUEST)
    if stuck is not None:
        return Verdict(ActionState.FAILED, f"{instance} not moved: {stuck}")
    if _STATE.passes(room, found, _NO_REQUEST) is not None:
        host = target.host
        why = f" ({host.disabled_reason})" if host.disabled_reason else ""
        return Verdict(
            ActionState.FAILED,
            f"{destination} is {host.state.value}{why}; {instance} not moved there",
        )
    if all(f.passes(room, found, _NO_REQUEST) is None for f in _CAPACITY):
        return GO
    return Verdict(ActionState.FAILED, _no_room(room, found, len(coming)))


def _no_room(room: HostView, instance: Instance, coming: int) -> str:
    """The refusal in words, e.g. `h2 has 2 vCPU and 1024 MB RAM free, vm7 needs 4
    vCPU and 2048 MB RAM (short by 2 vCPU and 1024 MB RAM); not moved`; disk is
    named when the instance has a local one."""
    dimensions = [
        (room.free_vcpus, instance.vcpus, "vCPU"),
        (room.free_memory_mb, instance.memory_mb, "MB RAM"),
    ]
    if instance.disk_gb > 0:
        dimensions.append((room.free_disk_gb, instance.disk_gb, "GB disk"))
    has = _listing([f"{free:g} {unit}" for free, _, unit in dimensions])
    needs = _listing([f"{need} {unit}" for _, need, unit in dimensions])
    short = _listing([f"{need - free:g} {unit}" for free, need, unit in dimensions if need > free])
    flying = f", counting {coming} migration(s) on their way there" if coming else ""
    return (
        f"{room.name} has {has} free{flying}, {instance.name} needs {needs} "
        f"(short by {short}); not moved"
    )


def _listing(parts: list[str]) -> str:
    if len(parts) <= 2:
        return " and ".join(parts)
    return f"{', '.join(parts[:-1])} and {parts[-1]}"
