"""The live view of a Nova cloud, for the applier's re-check before each migration:
a server with its flavor, host and status; a host as its nova-compute service
(enabled, disabled with the reason, down) and as Placement counts it (each resource
class's total, reserved and allocation ratio, and the usages, which hold every
instance's and every in-progress migration's allocation), with the servers on it.
Placement, not the hypervisor API, is read because only it has the allocation
ratios and, since microversion 2.88, the capacities at all."""

from __future__ import annotations

from typing import Any

from opendrs.cloud.openstack import COMPUTE_BINARY, NovaActions
from opendrs.domain.errors import DriverError, NotFound
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Flavor, Instance, InstanceState
from opendrs.domain.ports import HostOccupancy

_STATES = {
    "ACTIVE": InstanceState.ACTIVE,
    "PAUSED": InstanceState.ACTIVE,
    "SHUTOFF": InstanceState.STOPPED,
    "MIGRATING": InstanceState.MIGRATING,
    "RESIZE": InstanceState.MIGRATING,
    "VERIFY_RESIZE": InstanceState.MIGRATING,
}
_MB_PER_GB = 1024


class LiveNovaActions(NovaActions):
    """NovaActions that also show the cloud as it is now (LiveView), so the applier
    re-checks each migration before asking Nova for it. Instances are named by
    server id, hosts by their nova-compute service host, as NovaActions names them."""

    def __init__(self, connection: Any, *, block_migration: bool | str = "auto") -> None:
        super().__init__(connection, block_migration=block_migration)
        self._placement = connection.placement

    def instance_now(self, instance: str) -> Instance | None:
        server = self._server(instance)
        if server is None:
            return None
        return _instance(server, str(server.compute_host or ""))

    def host_now(self, host: str) -> HostOccupancy:
        services = self._call(
            f"find the compute service of {host}",
            lambda: list(self._compute.services(binary=COMPUTE_BINARY, host=host)),
        )
        if not services:
            raise NotFound("host", host)
        service = services[0]
        node = self._node(host)
        inventories = self._placement_get(f"/resource_providers/{node}/inventories")
        usages = self._placement_get(f"/resource_providers/{node}/usages")
        found = _host(host, service, inventories.get("inventories", {}), usages.get("usages", {}))
        servers = self._call(
            f"list the servers on {host}",
            lambda: list(self._compute.servers(details=True, all_projects=True, compute_host=host)),
        )
        return HostOccupancy(found, tuple(_instance(s, host) for s in servers))

    def _node(self, host: str) -> str:
        """The compute node (= Placement resource provider) id of the service host."""
        hypervisors = self._call(
            "list the hypervisors", lambda: list(self._compute.hypervisors(details=True))
        )
        for hypervisor in hypervisors:
            details = hypervisor.service_details or {}
            if details.get("host") == host:
                return str(hypervisor.id)
        raise DriverError(f"host {host} has a {COMPUTE_BINARY} service but no hypervisor")

    def _placement_get(self, path: str) -> dict[str, Any]:
        response = self._call(f"GET {path} from Placement", lambda: self._placement.get(path))
        if response.status_code == 404:
            raise DriverError(f"Placement does not know {path}")
        if response.status_code >= 400:
            raise DriverError(
                f"GET {path}: Placement answered {response.status_code}",
                transient=response.status_code >= 500 or response.status_code == 429,
            )
        body = response.json()
        if not isinstance(body, dict):
            raise DriverError(f"GET {path}: Placement answered {body!r}, not an object")
        return body


def _instance(server: Any, host: str) -> Instance:
    flavor = server.flavor
    get = (
        flavor.get
        if isinstance(flavor, dict)
        else lambda key, default=None: getattr(flavor, key, default)
    )
    size = Flavor(
        str(get("original_name") or get("name") or "nova"),
        int(get("vcpus") or 0),
        int(get("ram") or 0),
        int(get("disk") or 0),
    )
    state = _STATES.get(str(server.status or "").upper(), InstanceState.ERROR)
    return Instance(str(server.id), host, size, state=state)


def _host(name: str, service: Any, inventories: dict[str, Any], usages: dict[str, Any]) -> Host:
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
    state, reason = HostState.ENABLED, None
    if str(service.status or "") == "disabled":
        reason = service.disabled_reason or None
        maintenance = "maintenance" in (reason or "")
        state = HostState.MAINTENANCE if maintenance else HostState.DISABLED
    elif str(service.state or "") == "down" or getattr(service, "is_forced_down", False):
        state, reason = HostState.DISABLED, f"{COMPUTE_BINARY} is down"
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
    )
