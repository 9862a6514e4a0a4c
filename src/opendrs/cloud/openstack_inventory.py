"""The inventory side of an OpenStack cloud: each nova-compute service host with
its state (the service's), capacity, allocation policy and use (Placement, since
the hypervisor API stops reporting capacity at microversion 2.88), zone and
aggregates, and every server of every project as an instance named by its server
id, with its flavor, project, metadata and server groups. Nova owns host state
here, so this is a full CloudInventory; failing to read the cloud is a DriverError."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from opendrs.cloud.nova_reading import (
    compute_nodes,
    flavor_of,
    host_of,
    instance_of,
    placement_get,
)
from opendrs.cloud.openstack import COMPUTE_BINARY, nova_call
from opendrs.domain.errors import DriverError
from opendrs.domain.host import Host
from opendrs.domain.instance import Flavor, GroupPolicy, Instance, ServerGroup

log = logging.getLogger(__name__)

_POLICIES = {policy.value: policy for policy in GroupPolicy}


@dataclass(frozen=True, slots=True)
class _Servers:
    """The servers and server groups of one pass."""

    instances: tuple[Instance, ...]
    groups: tuple[ServerGroup, ...]


class OpenstackInventory:
    """CloudInventory over Nova and Placement through one openstacksdk connection.
    Hosts are named by their nova-compute service host (as NovaActions names them),
    instances by server id. Server groups are named by their id (Nova's names need
    not be unique); `list_groups` returns those of the latest pass."""

    def __init__(self, connection: Any) -> None:
        self._compute = connection.compute
        self._placement = connection.placement
        self._servers: _Servers | None = None
        self._groups: tuple[ServerGroup, ...] = ()
        self._errors: list[str] = []
        self.failures: Counter[str] = Counter()

    # --- CloudInventory ---------------------------------------------------

    def list_hosts(self) -> list[Host]:
        """Every compute service host whose compute node Placement knows; the servers
        read for its `running_vms` are kept for the `list_instances` that follows,
        so one refresh is one pass over the cloud."""
        services = nova_call(
            "list the compute services",
            lambda: list(self._compute.services(binary=COMPUTE_BINARY)),
        )
        nodes = compute_nodes(
            nova_call("list the hypervisors", lambda: list(self._compute.hypervisors(details=True)))
        )
        aggregates = self._aggregates()
        servers = self._read_servers()
        running: Counter[str] = Counter(i.host for i in servers.instances)
        hosts: list[Host] = []
        for service in services:
            name = str(service.host or "")
            node = nodes.get(name)
            if not name:
                continue
            if node is None:
                self._skip(name, f"{COMPUTE_BINARY} on {name} has no hypervisor (yet)")
                continue
            try:
                hosts.append(self._host(name, service, node, running[name], aggregates))
            except DriverError as error:
                if error.transient:
                    raise  # Placement is unwell: the whole refresh waits for it
                self._skip(name, str(error))
        self._servers = servers  # only a whole pass is kept for list_instances
        return hosts

    def list_instances(self) -> list[Instance]:
        """Every server that has a host, of every project."""
        servers, self._servers = self._servers, None
        if servers is None:
            servers = self._read_servers()
        self._groups = servers.groups
        return list(servers.instances)

    # --- extras -----------------------------------------------------------

    def list_groups(self) -> list[ServerGroup]:
        """The server groups read by the latest `list_instances`."""
        return list(self._groups)

    def drain_errors(self) -> list[str]:
        """What was skipped since the last call, one line per host."""
        errors, self._errors = self._errors, []
        return errors

    # --- reading ------------------------------------------------------------

    def _host(
        self, name: str, service: Any, node: Any, running: int, aggregates: dict[str, list[str]]
    ) -> Host:
        provider = f"/resource_providers/{node.id}"
        inventories = placement_get(self._placement, f"{provider}/inventories")
        usages = placement_get(self._placement, f"{provider}/usages")
        try:
            return host_of(
                name,
                service,
                inventories.get("inventories") or {},
                usages.get("usages") or {},
                running_vms=running,
                hypervisor_type=str(node.hypervisor_type or "QEMU"),
                hypervisor_version=int(node.hypervisor_version or 0),
                availability_zone=str(service.availability_zone or "nova"),
                aggregates=tuple(sorted(aggregates.get(name, ()))),
            )
        except (TypeError, ValueError, AttributeError) as error:
            raise DriverError(
                f"host {name}: Nova or Placement answered nonsense: {error}"
            ) from error

    def _aggregates(self) -> dict[str, list[str]]:
        """The names of the aggregates each host is in."""
        found = nova_call("list the aggregates", lambda: list(self._compute.aggregates()))
        member_of: dict[str, list[str]] = {}
        for aggregate in found:
            for host in aggregate.hosts or ():
                member_of.setdefault(str(host), []).append(str(aggregate.name))
        return member_of

    def _read_servers(self) -> _Servers:
        groups = nova_call(
            "list the server groups",
            lambda: list(self._compute.server_groups(all_projects=True)),
        )
        found: list[ServerGroup] = []
        member_of: dict[str, list[str]] = {}
        for group in groups:
            policy = _policy(group)
            if policy is None:
                log.warning(
                    "server group %s: policy %r is not one opendrs knows", group.id, group.policy
                )
                continue
            found.append(ServerGroup(str(group.id), policy))
            for member in group.member_ids or ():
                member_of.setdefault(str(member), []).append(str(group.id))
        servers = nova_call(
            "list the servers",
            lambda: list(self._compute.servers(details=True, all_projects=True)),
        )
        flavors: dict[str, Flavor] = {}
        instances = []
        for server in servers:
            host = server.compute_host
            if not host:
                continue  # never scheduled (BUILD, or ERROR before a host): holds nothing
            instances.append(
                instance_of(
                    server,
                    str(host),
                    flavor=flavor_of(server) or self._linked_flavor(server, flavors),
                    groups=tuple(sorted(member_of.get(str(server.id), ()))),
                )
            )
        return _Servers(tuple(instances), tuple(found))

    def _linked_flavor(self, server: Any, seen: dict[str, Flavor]) -> Flavor:
        """Before microversion 2.47 a server only links to its flavor by id."""
        flavor = server.flavor
        ident = str(flavor.get("id") if isinstance(flavor, dict) else getattr(flavor, "id", ""))
        if not ident:
            raise DriverError(f"server {server.id} names no flavor")
        if ident not in seen:
            read = nova_call(f"get flavor {ident}", lambda: self._compute.get_flavor(ident))
            seen[ident] = Flavor(
                str(read.name or ident),
                int(read.vcpus or 0),
                int(read.ram or 0),
                int(read.disk or 0),
            )
        return seen[ident]

    def _skip(self, host: str, why: str) -> None:
        self.failures[host] += 1
        self._errors.append(why)
        log.warning("inventory of %s skipped: %s", host, why)


def _policy(group: Any) -> GroupPolicy | None:
    """The group's policy: `policy` from microversion 2.64, `policies` before."""
    named = group.policy or next(iter(group.policies or ()), None)
    return _POLICIES.get(str(named or ""))
