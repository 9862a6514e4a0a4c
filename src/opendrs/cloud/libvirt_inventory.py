"""The inventory side of libvirt: each configured host's capacity (libvirt's node
info and storage pools) and the domains defined on it as instances, merged with
what opendrs records of the host (its state, allocation ratios, reservations,
zone), since libvirt knows nothing of those. Implements CloudInventory; a host
that cannot be read is reported and skipped, its instances kept as last recorded."""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from opendrs.cloud.deadline import Deadline
from opendrs.domain.errors import DriverError
from opendrs.domain.host import Host
from opendrs.domain.instance import Flavor, Instance, InstanceState
from opendrs.domain.ports import ClusterRepository

log = logging.getLogger(__name__)

NOVA_NS = "http://openstack.org/xmlns/libvirt/nova/1.1"
# opendrs's own domain metadata: <opendrs:instance xmlns:opendrs="urn:opendrs:instance:1">
# <opendrs:meta key="never_migrate">true</opendrs:meta></opendrs:instance>
OPENDRS_NS = "urn:opendrs:instance:1"
_GB = 1024**3
# virDomainState values (libvirt.h) that are not a running guest.
_SHUTOFF = 5
_CRASHED = 6
_STATES = {_SHUTOFF: InstanceState.STOPPED, _CRASHED: InstanceState.ERROR}
# virterror.h codes that mean the connection is gone (reconnect next time).
_CONNECTION_LOST = frozenset({5, 38, 39})
_ERR_NO_DOMAIN = 42

Connect = Callable[[str], Any]


def _libvirt_open(uri: str) -> Any:
    import libvirt  # optional; imported at the first connection, never at import

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # no stderr noise
    return libvirt.open(uri)


def _code(error: BaseException) -> int | None:
    getter = getattr(error, "get_error_code", None)
    code = getter() if callable(getter) else None
    return code if isinstance(code, int) else None


@dataclass(frozen=True, slots=True)
class _Reading:
    """One host as libvirt reported it in one pass."""

    host: Host
    instances: tuple[Instance, ...]


# What libvirt knows of a host; everything else (state, allocation ratios,
# reservations, aggregates, zone, metrics) is opendrs's own record.
_LIBVIRT_FIELDS = (
    "vcpus",
    "memory_mb",
    "local_gb",
    "local_gb_used",
    "disk_available_least",
    "vcpus_used",
    "memory_mb_used",
    "running_vms",
    "hypervisor_type",
    "hypervisor_version",
    "cpu_info",
)


class LibvirtInventory:
    """`hosts` maps host names to libvirt URIs; `records` is where opendrs keeps
    its own view of each host (the state set by operators and the applier must
    survive every refresh). Every libvirt call is bounded by `timeout` seconds,
    per host, so a hung host holds up only itself. `connect` opens a connection
    (libvirt.open by default; tests wrap it)."""

    host_fields = frozenset(_LIBVIRT_FIELDS)

    def __init__(
        self,
        hosts: Mapping[str, str],
        records: ClusterRepository,
        *,
        timeout: float = 10.0,
        connect: Connect = _libvirt_open,
    ) -> None:
        if not hosts:
            raise ValueError("a libvirt inventory needs at least one host")
        self._uris = dict(hosts)
        self._records = records
        self._connect = connect
        self._deadlines = {name: Deadline(timeout, name=f"libvirt-{name}") for name in hosts}
        self._connections: dict[str, Any] = {}
        self._snapshot: dict[str, _Reading | DriverError] | None = None
        self._errors: list[str] = []
        self.failures: Counter[str] = Counter()

    # --- CloudInventory ---------------------------------------------------

    def list_hosts(self) -> list[Host]:
        """Every host that answered, read afresh and merged with its record; the
        reading is kept for the `list_instances` that follows, so one refresh is
        one pass over libvirt."""
        self._snapshot = self._read_all()
        # Whole hosts for readers; InventorySync writes only `host_fields`.
        records = {h.name: h for h in self._records.list_hosts()}
        return [
            _merged(r.host, records.get(name))
            for name, r in self._snapshot.items()
            if isinstance(r, _Reading)
        ]

    def list_instances(self) -> list[Instance]:
        """Every domain defined on the hosts that answered (one defined on two
        hosts counts where it runs); for a host that did not answer, its
        instances as last recorded, so that a network blip deletes nothing."""
        snapshot, self._snapshot = self._snapshot, None
        if snapshot is None:
            snapshot = self._read_all()
        found: dict[str, Instance] = {}
        for name, reading in snapshot.items():
            if isinstance(reading, _Reading):
                mine = reading.instances
            else:
                mine = tuple(self._records.list_instances(host=name))
            for instance in mine:
                seen = found.get(instance.name)
                if seen is None or (not seen.live and instance.live):
                    found[instance.name] = instance
        return list(found.values())

    # --- extras -----------------------------------------------------------

    def drain_errors(self) -> list[str]:
        """What went wrong since the last call, one line per host that failed."""
        errors, self._errors = self._errors, []
        return errors

    def close(self) -> None:
        for name, connection in list(self._connections.items()):
            try:
                self._deadlines[name].call(f"close {name}", connection.close)
            except Exception:  # closing a dead connection may fail too
                log.debug("closing the connection to %s failed", name, exc_info=True)
        self._connections.clear()
        for deadline in self._deadlines.values():
            deadline.close()

    # --- reading ------------------------------------------------------------

    def _read_all(self) -> dict[str, _Reading | DriverError]:
        readings: dict[str, _Reading | DriverError] = {}
        for name in self._uris:
            try:
                readings[name] = self._read(name)
            except DriverError as error:
                self.failures[name] += 1
                self._errors.append(str(error))
                log.warning("inventory of %s skipped: %s", name, error)
                readings[name] = error
        return readings

    def _read(self, name: str) -> _Reading:
        deadline = self._deadlines[name]
        uri = self._uris[name]
        try:
            connection = self._connections.get(name)
            if connection is None:
                connection = deadline.call(f"connect to {name} ({uri})", lambda: self._connect(uri))
                if connection is None:
                    raise DriverError(f"cannot connect to {name} ({uri})", transient=True)
                self._connections[name] = connection
            return deadline.call(f"inventory of {name}", lambda: _reading(name, connection))
        except DriverError:
            self._connections.pop(name, None)  # a timeout leaves the connection unusable
            raise
        except Exception as error:
            if _code(error) in _CONNECTION_LOST or _code(error) is None:
                self._connections.pop(name, None)
            raise DriverError(f"inventory of {name} ({uri}): {error}", transient=True) from error


# --- what one pass reads (runs on the host's deadline worker) -----------------


def _reading(name: str, connection: Any) -> _Reading:
    model, memory_mb, cpus, mhz, _nodes, sockets, cores, threads = connection.getInfo()
    instances = []
    for domain in connection.listAllDomains(0):
        try:
            instances.append(instance_of(name, domain))
        except Exception as error:
            if _code(error) == _ERR_NO_DOMAIN:
                continue  # undefined between the listing and the look
            raise
    local_gb, local_free_gb = _local_disk(connection)
    host = Host(
        name,
        vcpus=int(cpus),
        memory_mb=int(memory_mb),
        local_gb=local_gb,
        local_gb_used=max(local_gb - local_free_gb, 0),
        disk_available_least=local_free_gb,
        # A stopped domain keeps its place, as Nova keeps a stopped server's allocation.
        vcpus_used=sum(i.vcpus for i in instances),
        memory_mb_used=sum(i.memory_mb for i in instances),
        running_vms=sum(1 for i in instances if i.live),
        hypervisor_type=str(connection.getType()),
        hypervisor_version=int(connection.getVersion()),
        cpu_info=json.dumps(
            {
                "model": str(model),
                "mhz": int(mhz),
                "topology": {"sockets": int(sockets), "cores": int(cores), "threads": int(threads)},
            },
            sort_keys=True,
        ),
    )
    return _Reading(host, tuple(instances))


def _merged(read: Host, record: Host | None) -> Host:
    if record is None:
        return read
    return replace(record, **{name: getattr(read, name) for name in _LIBVIRT_FIELDS})


def instance_of(host: str, domain: Any) -> Instance:
    """The instance a libvirt domain is: its vCPUs and memory, Nova's flavor and
    owners when Nova defined it, and the keys an operator set for opendrs."""
    state, max_kib, _cur_kib, vcpus, _cpu_ns = domain.info()
    tree = ET.fromstring(domain.XMLDesc(0))
    metadata: dict[str, str] = {}
    flavor_name, disk_gb, project = _nova(tree, metadata)
    metadata.update(_own_metadata(tree))
    return Instance(
        name=str(domain.name()),
        host=host,
        flavor=Flavor(flavor_name or "libvirt", int(vcpus), int(max_kib) // 1024, disk_gb),
        state=_STATES.get(int(state), InstanceState.ACTIVE),
        project=project,
        metadata=metadata,
    )


def _nova(tree: ET.Element, metadata: dict[str, str]) -> tuple[str, int, str]:
    """Flavor name, flavor disk and project from Nova's domain metadata, if any;
    the display name and owners go to `metadata`."""
    instance = tree.find(f"./metadata/{{{NOVA_NS}}}instance")
    if instance is None:
        return "", 0, ""
    display = instance.findtext(f"{{{NOVA_NS}}}name")
    if display:
        metadata["display_name"] = display
    project = ""
    for role in ("user", "project"):
        owner = instance.find(f"./{{{NOVA_NS}}}owner/{{{NOVA_NS}}}{role}")
        if owner is not None and owner.get("uuid"):
            metadata[f"{role}_id"] = str(owner.get("uuid"))
            if role == "project":
                project = str(owner.get("uuid"))
    flavor = instance.find(f"{{{NOVA_NS}}}flavor")
    if flavor is None:
        return "", 0, project
    disk = (flavor.findtext(f"{{{NOVA_NS}}}disk") or "0").strip()
    return str(flavor.get("name", "")), int(disk) if disk.isdigit() else 0, project


def _own_metadata(tree: ET.Element) -> dict[str, str]:
    """Keys an operator set for opendrs (never_migrate, thresholds...) in the
    domain's <metadata>, with `virsh metadata --uri urn:opendrs:instance:1`."""
    found: dict[str, str] = {}
    for entry in tree.iterfind(f"./metadata/{{{OPENDRS_NS}}}instance/{{{OPENDRS_NS}}}meta"):
        key = entry.get("key")
        if key:
            found[key] = (entry.text or "").strip()
    return found


def _local_disk(connection: Any) -> tuple[int, int]:
    """Capacity and free space (GB) of the host's active storage pools; a
    driver without pools reports none."""
    try:
        pools = connection.listAllStoragePools(2)  # VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE
    except Exception as error:
        if _code(error) in _CONNECTION_LOST:
            raise
        return 0, 0
    capacity = available = 0
    for pool in pools:
        try:
            _state, cap, _alloc, avail = pool.info()
        except Exception as error:
            if _code(error) in _CONNECTION_LOST:
                raise
            continue
        capacity += int(cap)
        available += int(avail)
    return capacity // _GB, available // _GB
