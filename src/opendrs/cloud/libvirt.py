"""Raw counters of a libvirt host (KVM/QEMU, or libvirt's own `test:///` driver)
through libvirt-python: host totals, and for every running domain its vCPUs,
cpu time, memory (balloon stats where present), disks, volumes and interfaces.

Every libvirt call is bounded by a timeout; a domain that vanishes or fails
mid-poll costs only that domain's counters (counted, and told by `drain_errors`).
"""

from __future__ import annotations

import functools
import logging
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from typing import Any

from opendrs.cloud.deadline import Deadline
from opendrs.domain.clock import Clock, WallClock
from opendrs.domain.counters import DeviceBytes, HostCounters, InstanceCounters
from opendrs.domain.errors import DriverError

log = logging.getLogger(__name__)

NOVA_NS = "http://openstack.org/xmlns/libvirt/nova/1.1"
_KIB_PER_MB = 1024
_GB = 1024**3
# How instances are named: see LibvirtStats.
_INSTANCE_KEYS = ("name", "uuid", "nova")

# libvirt error codes (virterror.h) we tell apart; the module may be absent.
_ERR_NO_DOMAIN = 42
_ERR_SYSTEM = 38
_ERR_RPC = 39
_ERR_NO_CONNECT = 5
_CONNECTION_LOST = frozenset({_ERR_SYSTEM, _ERR_RPC, _ERR_NO_CONNECT})

_LIST_ACTIVE = 1  # VIR_CONNECT_LIST_DOMAINS_ACTIVE
_ALL_CELLS = -1  # VIR_NODE_MEMORY_STATS_ALL_CELLS, VIR_NODE_CPU_STATS_ALL_CPUS


def _libvirt() -> Any:
    try:
        import libvirt
    except ImportError as exc:
        raise DriverError(
            "the libvirt driver needs libvirt-python (pip install libvirt-python; "
            "it builds against Debian's libvirt-dev and pkg-config)"
        ) from exc
    # libvirt prints every error on stderr unless a handler takes them.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


def _code(exc: BaseException) -> int | None:
    getter = getattr(exc, "get_error_code", None)
    code = getter() if callable(getter) else None
    return code if isinstance(code, int) else None


class LibvirtStats:
    """The StatsSource of one libvirt host.

    `instance_key` names instances by domain `name`, by `uuid`, or by `nova`: the
    uuid of a domain Nova defined (it is the Nova server id, as the OpenStack
    inventory names instances; its `instance-0000000a` name means nothing there),
    the name of any other.
    `connect` opens a connection (libvirt.open by default; tests wrap it).
    """

    def __init__(
        self,
        uri: str,
        *,
        timeout: float = 10.0,
        clock: Clock | None = None,
        instance_key: str = "name",
        connect: Callable[[str], Any] | None = None,
    ) -> None:
        if instance_key not in _INSTANCE_KEYS:
            raise ValueError(
                f"instance_key must be one of {', '.join(_INSTANCE_KEYS)}, got {instance_key!r}"
            )
        self.uri = uri
        self._clock: Clock = clock or WallClock()
        self._key = instance_key
        self._connect = connect
        self._deadline = Deadline(timeout, name="libvirt-call")
        self._conn: Any = None
        self.failures: Counter[str] = Counter()
        self._errors: list[str] = []

    # --- StatsSource -----------------------------------------------------

    def host_counters(self, host: str) -> HostCounters:
        conn = self._connection()
        info = self._bounded("host info", conn.getInfo)
        memory_mb = int(info[1])
        cores = int(info[2])
        free_mb = self._free_memory_mb(conn)
        busy_ns = self._host_busy_ns(conn)
        local_gb, local_free_gb = self._local_disk(conn)
        return HostCounters(
            host=host,
            time=self._clock.now(),
            cores=max(cores, 1),
            cpu_time_ns=busy_ns,
            memory_mb=memory_mb,
            memory_free_mb=free_mb,
            local_gb=local_gb,
            local_gb_free=local_free_gb,
        )

    def instance_counters(self, host: str) -> list[InstanceCounters]:
        conn = self._connection()
        domains = self._bounded(
            "list domains", lambda: conn.listAllDomains(_LIST_ACTIVE), reconnect=True
        )
        found: list[InstanceCounters] = []
        for domain in domains:
            label = self._domain_label(domain)
            try:
                counters = self._deadline.call(
                    f"stats of domain {label}", functools.partial(self._domain_counters, domain)
                )
            except Exception as exc:
                self._domain_failed(label, exc)
                continue
            if counters is not None:
                found.append(counters)
        return found

    # --- extras ------------------------------------------------------------

    def drain_errors(self) -> list[str]:
        """What went wrong since the last call (one line per lost domain)."""
        errors, self._errors = self._errors, []
        return errors

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                self._deadline.call("close", conn.close)
            except Exception:  # closing a dead connection may fail too
                log.debug("closing %s failed", self.uri, exc_info=True)
        self._deadline.close()

    # --- connection --------------------------------------------------------

    def _connection(self) -> Any:
        if self._conn is not None:
            return self._conn
        connect = self._connect
        if connect is None:
            connect = _libvirt().open
        try:
            self._conn = self._deadline.call(f"connect to {self.uri}", lambda: connect(self.uri))
        except DriverError:
            raise
        except Exception as exc:
            raise DriverError(f"cannot connect to {self.uri}: {exc}", transient=True) from exc
        if self._conn is None:
            raise DriverError(f"cannot connect to {self.uri}", transient=True)
        return self._conn

    def _bounded(self, what: str, fn: Callable[[], Any], *, reconnect: bool = True) -> Any:
        """A connection-level call; a timeout or a lost connection drops the
        connection so that the next poll opens a new one."""
        try:
            return self._deadline.call(f"{what} on {self.uri}", fn)
        except DriverError:
            self._conn = None
            raise
        except Exception as exc:
            if reconnect and _code(exc) in _CONNECTION_LOST:
                self._conn = None
            raise DriverError(f"{what} on {self.uri}: {exc}", transient=True) from exc

    # --- host --------------------------------------------------------------

    def _free_memory_mb(self, conn: Any) -> float:
        try:
            stats = self._deadline.call(
                "node memory stats", lambda: conn.getMemoryStats(_ALL_CELLS, 0)
            )
        except DriverError:
            raise
        except Exception:
            stats = None
        if stats and "free" in stats:
            # free + page cache + buffers: what the host could give to guests now.
            kib = sum(int(stats.get(k, 0)) for k in ("free", "buffers", "cached"))
            return kib / _KIB_PER_MB
        free_bytes = self._bounded("free memory", conn.getFreeMemory)
        return float(free_bytes) / (1024 * 1024)

    def _host_busy_ns(self, conn: Any) -> int:
        try:
            stats = self._deadline.call("node cpu stats", lambda: conn.getCPUStats(_ALL_CELLS, 0))
        except DriverError:
            raise
        except Exception:
            stats = None
        if stats:
            return int(sum(v for k, v in stats.items() if k not in ("idle", "iowait")))
        # No node CPU stats from this driver: the guests' cpu time is the best we have.
        domains = self._bounded("list domains", lambda: conn.listAllDomains(_LIST_ACTIVE))
        total = 0
        for domain in domains:
            try:
                total += int(self._deadline.call("domain info", domain.info)[4])
            except Exception:
                continue
        return total

    def _local_disk(self, conn: Any) -> tuple[int, float]:
        try:
            pools = self._deadline.call("storage pools", conn.listAllStoragePools)
        except DriverError:
            raise
        except Exception:
            return 0, 0.0
        capacity = available = 0
        for pool in pools:
            try:
                _, cap, _, avail = self._deadline.call("pool info", pool.info)
            except DriverError:
                raise
            except Exception:
                continue
            capacity += int(cap)
            available += int(avail)
        return capacity // _GB, available / _GB

    # --- domains -----------------------------------------------------------

    def _domain_label(self, domain: Any) -> str:
        try:
            return str(domain.name())
        except Exception:
            return "<unknown>"

    def _domain_failed(self, label: str, exc: BaseException) -> None:
        if _code(exc) == _ERR_NO_DOMAIN:
            self.failures["domain_gone"] += 1
            message = f"domain {label} disappeared during the poll"
            log.info("%s: %s", self.uri, message)
        else:
            self.failures["domain"] += 1
            message = f"domain {label}: {exc}"
            log.warning("%s: %s", self.uri, message)
        self._errors.append(message)

    def _domain_counters(self, domain: Any) -> InstanceCounters | None:
        """Runs on the deadline's worker: every call for one domain."""
        state, max_kib, _cur_kib, vcpus, cpu_ns = domain.info()
        if int(state) not in (1, 2, 3):  # running, blocked, paused: the others have no stats
            return None
        when = self._clock.now()
        tree = ET.fromstring(domain.XMLDesc(0))
        by_uuid = self._key == "uuid" or (
            self._key == "nova" and tree.find(f"./metadata/{{{NOVA_NS}}}instance") is not None
        )
        name = str(domain.UUIDString() if by_uuid else domain.name())
        disks, volumes = self._disks(domain, tree)
        interfaces, metadata = self._interfaces(domain, tree)
        flavor = _nova_metadata(tree, metadata)
        if by_uuid:
            metadata.setdefault("display_name", str(domain.name()))
        return InstanceCounters(
            instance=name,
            time=when,
            vcpus=int(vcpus),
            cpu_time_ns=int(cpu_ns),
            memory_mb=int(max_kib) // _KIB_PER_MB,
            memory_used_mb=_memory_used_mb(domain),
            disks=disks,
            interfaces=interfaces,
            volumes=volumes,
            flavor=flavor,
            metadata=metadata,
        )

    def _disks(
        self, domain: Any, tree: ET.Element
    ) -> tuple[dict[str, DeviceBytes], dict[str, DeviceBytes]]:
        disks: dict[str, DeviceBytes] = {}
        volumes: dict[str, DeviceBytes] = {}
        for disk in tree.iterfind("./devices/disk"):
            if disk.get("device", "disk") != "disk":
                continue  # cdroms and floppies
            target = disk.find("target")
            dev = target.get("dev") if target is not None else None
            if not dev:
                continue
            try:
                rd_req, rd_bytes, wr_req, wr_bytes, _errs = domain.blockStats(dev)
            except Exception as exc:
                if _code(exc) == _ERR_NO_DOMAIN:
                    raise
                continue  # an empty or unplugged device: no counters, the rest go on
            counts = DeviceBytes(int(rd_bytes), int(wr_bytes), int(rd_req), int(wr_req))
            # Nova gives an attached Cinder volume its volume id as serial.
            (volumes if disk.find("serial") is not None else disks)[dev] = counts
        return disks, volumes

    def _interfaces(
        self, domain: Any, tree: ET.Element
    ) -> tuple[dict[str, DeviceBytes], dict[str, str]]:
        found: dict[str, DeviceBytes] = {}
        metadata: dict[str, str] = {}
        for iface in tree.iterfind("./devices/interface"):
            target = iface.find("target")
            dev = target.get("dev") if target is not None else None
            if not dev:
                continue
            try:
                stats = domain.interfaceStats(dev)
            except Exception as exc:
                if _code(exc) == _ERR_NO_DOMAIN:
                    raise
                continue
            rx_bytes, rx_packets, _, _, tx_bytes, tx_packets, _, _ = stats
            found[dev] = DeviceBytes(int(rx_bytes), int(tx_bytes), int(rx_packets), int(tx_packets))
            for direction in ("inbound", "outbound"):
                shaping = iface.find(f"./bandwidth/{direction}")
                average = shaping.get("average") if shaping is not None else None
                if average:
                    # libvirt's average is in kilobytes per second; we keep bits per second.
                    bits = float(average) * 1000 * 8
                    metadata[f"qos.{direction}_bps.{dev}"] = f"{bits:g}"
        return found, metadata


def _memory_used_mb(domain: Any) -> float | None:
    """Ceilometer's memory.usage: what the guest uses per its balloon driver."""
    try:
        stats = domain.memoryStats()
    except Exception as exc:
        if _code(exc) == _ERR_NO_DOMAIN:
            raise
        return None
    if "available" in stats and "unused" in stats:
        return (int(stats["available"]) - int(stats["unused"])) / _KIB_PER_MB
    if "rss" in stats:
        return int(stats["rss"]) / _KIB_PER_MB
    return None


def _nova_metadata(tree: ET.Element, metadata: dict[str, str]) -> str:
    """Flavor name, display name and owner from Nova's domain metadata, if any."""
    instance = tree.find(f"./metadata/{{{NOVA_NS}}}instance")
    if instance is None:
        return ""
    name = instance.findtext(f"{{{NOVA_NS}}}name")
    if name:
        metadata["display_name"] = name
    for role in ("user", "project"):
        owner = instance.find(f"./{{{NOVA_NS}}}owner/{{{NOVA_NS}}}{role}")
        if owner is not None and owner.get("uuid"):
            metadata[f"{role}_id"] = str(owner.get("uuid"))
    flavor = instance.find(f"{{{NOVA_NS}}}flavor")
    return str(flavor.get("name", "")) if flavor is not None else ""
