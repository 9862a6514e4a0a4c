"""The live view of a Nova cloud, for the applier's re-check before each migration:
a server with its flavor, host and status; a host as its nova-compute service
(enabled, disabled with the reason, down) and as Placement counts it (each resource
class's total, reserved and allocation ratio, and the usages, which hold every
instance's and every in-progress migration's allocation), with the servers on it.
Placement, not the hypervisor API, is read because only it has the allocation
ratios and, since microversion 2.88, the capacities at all."""

from __future__ import annotations

from typing import Any

from opendrs.cloud.nova_reading import compute_nodes, host_of, instance_of, placement_get
from opendrs.cloud.openstack import COMPUTE_BINARY, NovaActions, nova_call
from opendrs.domain.errors import DriverError, NotFound
from opendrs.domain.instance import Instance
from opendrs.domain.ports import HostOccupancy


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
        return instance_of(server, str(server.compute_host or ""))

    def host_now(self, host: str) -> HostOccupancy:
        services = nova_call(
            f"find the compute service of {host}",
            lambda: list(self._compute.services(binary=COMPUTE_BINARY, host=host)),
        )
        if not services:
            raise NotFound("host", host)
        service = services[0]
        node = self._node(host)
        inventories = self._placement_get(f"/resource_providers/{node}/inventories")
        usages = self._placement_get(f"/resource_providers/{node}/usages")
        found = host_of(host, service, inventories.get("inventories", {}), usages.get("usages", {}))
        servers = nova_call(
            f"list the servers on {host}",
            lambda: list(self._compute.servers(details=True, all_projects=True, compute_host=host)),
        )
        return HostOccupancy(found, tuple(instance_of(s, host) for s in servers))

    def _node(self, host: str) -> str:
        """The compute node (= Placement resource provider) id of the service host."""
        hypervisors = nova_call(
            "list the hypervisors", lambda: list(self._compute.hypervisors(details=True))
        )
        node = compute_nodes(hypervisors).get(host)
        if node is None:
            raise DriverError(f"host {host} has a {COMPUTE_BINARY} service but no hypervisor")
        return str(node.id)

    def _placement_get(self, path: str) -> dict[str, Any]:
        return placement_get(self._placement, path)
