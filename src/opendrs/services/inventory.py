"""Keeps the SQL cluster model in step with what the cloud driver reports
(Watcher's collector): hosts and instances, with deleted instances removed."""

from __future__ import annotations

import logging

from opendrs.domain.ports import CloudInventory, ClusterRepository

log = logging.getLogger(__name__)


class InventorySync:
    def __init__(self, cloud: CloudInventory, cluster: ClusterRepository) -> None:
        self._cloud = cloud
        self._cluster = cluster
        self.failures = 0

    def sync(self) -> bool:
        """One refresh; a failing driver is logged and counted, never fatal."""
        try:
            hosts = self._cloud.list_hosts()
            instances = self._cloud.list_instances()
        except Exception:
            self.failures += 1
            log.exception("inventory refresh failed; keeping the previous model")
            return False
        self._cluster.upsert_hosts(hosts)
        self._cluster.upsert_instances(instances)
        self._cluster.remove_instances_not_in([i.name for i in instances])
        return True
