"""Keeps the SQL cluster model in step with what the cloud driver reports
(Watcher's collector): hosts and instances, with deleted instances removed and
announced on the bus (so their alarms retire instead of going no_data)."""

from __future__ import annotations

import logging

from opendrs.bus import subjects
from opendrs.domain.clock import Clock, WallClock
from opendrs.domain.event import Event
from opendrs.domain.ports import (
    Bus,
    CloudInventory,
    ClusterRepository,
    GroupInventory,
    PartialHostInventory,
)

log = logging.getLogger(__name__)


class InventorySync:
    def __init__(
        self,
        cloud: CloudInventory,
        cluster: ClusterRepository,
        bus: Bus | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._cloud = cloud
        self._cluster = cluster
        self._bus = bus
        self._clock = clock or WallClock()
        self._known: set[str] | None = None
        self.failures = 0

    def sync(self) -> bool:
        """One refresh; a failing driver is logged and counted, never fatal."""
        try:
            hosts = self._cloud.list_hosts()
            instances = self._cloud.list_instances()
            groups = self._cloud.list_groups() if isinstance(self._cloud, GroupInventory) else None
        except Exception:
            self.failures += 1
            log.exception("inventory refresh failed; keeping the previous model")
            return False
        names = {i.name for i in instances}
        # A cloud that knows only part of a host leaves the rest (its state) as
        # opendrs has it at the moment of the write, not as it was when read.
        fields = self._cloud.host_fields if isinstance(self._cloud, PartialHostInventory) else None
        self._cluster.upsert_hosts(hosts, fields)
        self._cluster.upsert_instances(instances)
        if groups is not None:
            self._cluster.upsert_groups(groups)
        self._cluster.remove_instances_not_in(sorted(names))
        gone = sorted(self._known - names) if self._known is not None else []
        self._known = names
        if self._bus is not None:
            for name in gone:
                self._bus.publish(
                    subjects.INVENTORY_DELETED,
                    Event(
                        type="opendrs.instance.deleted",
                        source="opendrs.inventory",
                        time=self._clock.now(),
                        subject=name,
                        data={"entity": name},
                    ),
                )
        return True
