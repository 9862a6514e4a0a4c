"""The live view of a cloud that offers only its inventory (list_hosts and
list_instances, like the demo's simulated cloud): each look lists the whole cloud,
which suits small or in-process clouds; real drivers answer per host (LiveView)."""

from __future__ import annotations

from opendrs.domain.errors import NotFound
from opendrs.domain.instance import Instance
from opendrs.domain.ports import CloudInventory, HostOccupancy


class InventoryView:
    """A LiveView over a CloudInventory."""

    def __init__(self, inventory: CloudInventory) -> None:
        self._inventory = inventory

    def instance_now(self, instance: str) -> Instance | None:
        return next((i for i in self._inventory.list_instances() if i.name == instance), None)

    def host_now(self, host: str) -> HostOccupancy:
        found = next((h for h in self._inventory.list_hosts() if h.name == host), None)
        if found is None:
            raise NotFound("host", host)
        on = tuple(i for i in self._inventory.list_instances() if i.host == host)
        return HostOccupancy(found, on)
