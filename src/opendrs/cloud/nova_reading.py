"""How opendrs reads a Nova cloud into its own values, shared by the live view
(openstack_live) and the inventory (openstack_inventory): a server as an Instance,
a nova-compute service with its Placement inventories and usages as a Host, the
compute node (= Placement resource provider) of each service host, and Placement
GETs with their errors as DriverError."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from opendrs.cloud.openstack import COMPUTE_BINARY, nova_call
from opendrs.domain.errors import DriverError
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Flavor, Instance, InstanceState

T = TypeVar("T")

# Server statuses (Nova API reference, "Server status"); any other (BUILD, REBOOT,
# SHELVED, SUSPENDED, UNKNOWN...) is ERROR: opendrs moves none of them.
STATES = {
    "ACTIVE": InstanceState.ACTIVE,
    "PAUSED": InstanceState.ACTIVE,
    "SHUTOFF": InstanceState.STOPPED,
    "MIGRATING": InstanceState.MIGRATING,
    "RESIZE": InstanceState.MIGRATING,
    "VERIFY_RESIZE": InstanceState.MIGRATING,
}
_MB_PER_GB = 1024


def placement_get(placement: Any, path: str) -> dict[str, Any]:
    """The JSON object Placement answers to GET `path`."""
    response = nova_call(f"GET {path} from Placement", lambda: placement.get(path))
    if response.status_code == 404:
        raise DriverError(f"Placement does not know {path}")
    if response.status_code >= 400:
        raise DriverError(
            f"GET {path}: Placement answered {response.status_code}",
            transient=response.status_code >= 500 or response.status_code == 429,
        )
    try:
        body = response.json()
    except ValueError as error:
        raise DriverError(f"GET {path}: Placement answered no JSON: {error}") from error
    if not isinstance(body, dict):
        raise DriverError(f"GET {path}: Placement answered {body!r}, not an object")
    return body


def compute_nodes(hypervisors: Iterable[Any]) -> dict[str, Any]:
    """The hypervisor (compute node) of each service host; its id is the Placement
    resource provider uuid (microversion 2.53 and later)."""
    nodes: dict[str, Any] = {}
    for hypervisor in hypervisors:
        details = hypervisor.service_details or {}
        host = details.get("host")
        if host:
            nodes.setdefault(str(host), hypervisor)
    return nodes


def flavor_of(server: Any) -> Flavor | None:
    """The flavor embedded in the server (microversion 2.47 and later), or None
    when the server only links to it (older microversions)."""
    flavor = server.flavor
    get = (
        flavor.get
        if isinstance(flavor, dict)
        else lambda key, default=None: getattr(flavor, key, default)
    )
    if not get("vcpus"):  # Nova flavors have at least one vCPU; the SDK defaults 0
        return None
    return Flavor(
        str(get("original_name") or get("name") or "nova"),
        int(get("vcpus") or 0),
        int(get("ram") or 0),
        int(get("disk") or 0),
    )


def instance_of(
    server: Any,
    host: str,
    *,
    flavor: Flavor | None = None,
    groups: tuple[str, ...] = (),
) -> Instance:
    """The server as an Instance named by its server id, on `host`; its metadata
    (where an operator sets `never_migrate`) with its display name and owner."""
    size = flavor or flavor_of(server) or Flavor("nova", 0, 0, 0)
    state = STATES.get(str(server.status or "").upper(), InstanceState.ERROR)
    metadata = {str(k): str(v) for k, v in (server.metadata or {}).items()}
    if server.name:
        metadata.setdefault("display_name", str(server.name))
    if server.user_id:
        metadata.setdefault("user_id", str(server.user_id))
    return Instance(
        str(server.id),
        host,
        size,
        state=state,
        groups=groups,
        project=str(server.project_id or ""),
        metadata=metadata,
    )


def host_of(
    name: str,
    service: Any,
    inventories: Mapping[str, Any],
    usages: Mapping[str, Any],
    **more: Any,
) -> Host:
    """The host as its nova-compute service (state) and Placement (capacity,
    allocation ratios, reservations, use) report it; `more` sets other Host fields."""

    def inventory(kind: str) -> tuple[int, int, float]:
        found = inventories.get(kind) or {}
        return (
            int(found.get("total", 0)),
            int(found.get("reserved", 0)),
            float(found.get("allocation_ratio", 1.0)),
        )

    vcpus, vcpus_reserved, cpu_ratio = inventory("VCPU")
    memory_mb, memory_reserved, ram_ratio = inventory("MEMORY_MB")
    disk_gb, disk_reserved, disk_ratio = inventory("DISK_GB")
    state, reason = host_state(service)
    return Host(
        name,
        vcpus=vcpus,
        memory_mb=memory_mb,
        local_gb=disk_gb,
        vcpus_used=int(usages.get("VCPU", 0)),
        memory_mb_used=int(usages.get("MEMORY_MB", 0)),
        local_gb_used=int(usages.get("DISK_GB", 0)),
        cpu_allocation_ratio=cpu_ratio,
        ram_allocation_ratio=ram_ratio,
        disk_allocation_ratio=disk_ratio,
        reserved_host_cpus=vcpus_reserved,
        reserved_host_memory_mb=memory_reserved,
        reserved_host_disk_mb=disk_reserved * _MB_PER_GB,
        state=state,
        disabled_reason=reason,
        **more,
    )


def host_state(service: Any) -> tuple[HostState, str | None]:
    """Nova has no maintenance state: NovaActions writes it as a disabled service
    whose reason says maintenance, and it reads back so. A service that is down
    (or forced down) takes no work: disabled, saying why."""
    if str(service.status or "") == "disabled":
        reason = service.disabled_reason or None
        maintenance = "maintenance" in (reason or "")
        return (HostState.MAINTENANCE if maintenance else HostState.DISABLED), reason
    if str(service.state or "") == "down" or getattr(service, "is_forced_down", False):
        return HostState.DISABLED, f"{COMPUTE_BINARY} is down"
    return HostState.ENABLED, None
