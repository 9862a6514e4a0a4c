"""The action side of libvirt: live migration with virDomainMigrateToURI3 (peer to
peer, persistent on the destination, undefined on the source, auto-converging),
finding and aborting running migrations, and host enable/disable kept as opendrs's
own state (libvirt has no such notion), and the live view the applier re-checks
before each migration (each host's cores and memory as libvirt reports them, its
state and allocation policy as opendrs records them, the domains defined on it).
Implements CloudActions, OperationFinder, OperationAborter and LiveView; libvirt
errors become DriverError (transient when the connection was lost)."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from opendrs.cloud.libvirt_inventory import instance_of
from opendrs.domain.errors import DriverError, InvalidTransition, NotFound
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Instance
from opendrs.domain.ports import ClusterRepository, HostOccupancy, Operation, OperationState
from opendrs.domain.power import PowerControl

log = logging.getLogger(__name__)

# virterror.h codes told apart here.
_ERR_NO_SUPPORT = 3
_ERR_NO_CONNECT = 5
_ERR_SYSTEM = 38
_ERR_RPC = 39
_ERR_NO_DOMAIN = 42
_TRANSIENT = frozenset({_ERR_NO_CONNECT, _ERR_SYSTEM, _ERR_RPC})
# virDomainMigrateFlags and virDomainJobType / operation values, as libvirt defines them.
MIGRATE_LIVE = 1
MIGRATE_PEER2PEER = 2
MIGRATE_TUNNELLED = 4
MIGRATE_PERSIST_DEST = 8
MIGRATE_UNDEFINE_SOURCE = 16
MIGRATE_AUTO_CONVERGE = 8192
_JOB_NONE = 0
_JOB_OPERATION_MIGRATION_OUT = 3
# virTypedParameter names of virDomainMigrateToURI3.
PARAM_BANDWIDTH = "bandwidth"
PARAM_URI = "migrate_uri"

Connect = Callable[[str], Any]
Launch = Callable[[Callable[[], None]], "Future[None]"]


@dataclass(frozen=True, slots=True)
class MigrationOptions:
    """`bandwidth_mib_s` caps each migration (0: libvirt's default); `migrate_uri`
    (e.g. `tcp://{host}`) picks the migration network; `tunnelled` sends it through
    the libvirtd connection instead."""

    bandwidth_mib_s: int = 0
    migrate_uri: str = ""
    tunnelled: bool = False

    def flags(self, live: bool) -> int:
        flags = MIGRATE_PEER2PEER | MIGRATE_PERSIST_DEST | MIGRATE_UNDEFINE_SOURCE
        if live:
            flags |= MIGRATE_LIVE | MIGRATE_AUTO_CONVERGE
        if self.tunnelled:
            flags |= MIGRATE_TUNNELLED
        return flags

    def params(self, destination: str) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.bandwidth_mib_s:
            params[PARAM_BANDWIDTH] = self.bandwidth_mib_s
        if self.migrate_uri and not self.tunnelled:
            params[PARAM_URI] = self.migrate_uri.format(host=destination)
        return params


@dataclass
class _Migration:
    id: str
    instance: str
    source: str
    destination: str
    future: Future[None]


def _libvirt_open(uri: str) -> Any:
    import libvirt  # imported here: the module is optional and nothing runs at import

    return libvirt.open(uri)


def _thread_launch(pool: ThreadPoolExecutor) -> Launch:
    return lambda call: pool.submit(call)


class LibvirtActions:
    """`hosts` maps each host name to its libvirt URI (`qemu+ssh://h/system`, or
    `test:///...` in tests). Migrations run in worker threads, since libvirt's call
    blocks until the migration ends; `launch` replaces the thread pool in tests.
    `power` switches the hosts it controls off and on (`graceful_off`: ask their
    operating system to shut down first)."""

    def __init__(
        self,
        hosts: Mapping[str, str],
        states: ClusterRepository,
        *,
        options: MigrationOptions | None = None,
        connect: Connect = _libvirt_open,
        launch: Launch | None = None,
        max_workers: int = 8,
        power: PowerControl | None = None,
        graceful_off: bool = True,
    ) -> None:
        self._uris = dict(hosts)
        self._power = power
        self._graceful_off = graceful_off
        self._states = states
        self._options = options or MigrationOptions()
        self._connect = connect
        self._pool: ThreadPoolExecutor | None = None
        if launch is None:
            self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="opendrs-migrate")
            launch = _thread_launch(self._pool)
        self._launch = launch
        self._connections: dict[str, Any] = {}
        self._migrations: dict[str, _Migration] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # --- CloudActions ----------------------------------------------------

    def start_migration(self, instance: str, destination: str, live: bool = True) -> str:
        if destination not in self._uris:
            raise DriverError(f"unknown destination host {destination!r}")
        source = self.locate(instance)
        if source is None:
            raise DriverError(f"instance {instance} is on none of the known hosts")
        if source == destination:
            raise DriverError(f"instance {instance} is already on {destination}")
        if self._running_on_record(instance) is not None:
            raise DriverError(f"instance {instance} is already migrating")
        domain = self._call(source, f"look up {instance}", lambda c: c.lookupByName(instance))
        uri = self._uris[destination]
        flags = self._options.flags(live)
        params = self._options.params(destination)

        def migrate() -> None:
            try:
                domain.migrateToURI3(uri, params, flags)
            except Exception as error:
                raise _translate(error, f"migrating {instance} to {destination}") from error

        operation = f"libvirt-migration-{next(self._ids)}"
        log.info("migrating %s from %s to %s (flags %#x)", instance, source, destination, flags)
        with self._lock:
            self._migrations[operation] = _Migration(
                operation, instance, source, destination, self._launch(migrate)
            )
        return operation

    def operation(self, operation_id: str) -> Operation:
        with self._lock:
            migration = self._migrations.get(operation_id)
        if migration is None:
            raise DriverError(f"unknown operation {operation_id!r}")
        future = migration.future
        if not future.done():
            return Operation(operation_id, OperationState.RUNNING)
        error = future.exception()
        if error is None:
            return Operation(operation_id, OperationState.SUCCEEDED)
        return Operation(operation_id, OperationState.FAILED, str(error))

    def locate(self, instance: str) -> str | None:
        """The host running `instance`: the one where it is active (during a
        migration that is still the source)."""
        found: str | None = None
        for host in self._uris:
            domain = self._lookup(host, instance)
            if domain is None:
                continue
            if self._call(host, "domain state", _active(domain)):
                return host
            if found is None:
                found = host
        return found

    def set_host_state(self, host: str, state: HostState, reason: str | None = None) -> None:
        """Enable, disable or maintenance are opendrs's own record of the host.
        Powering off records the host as off first (so nothing is placed on it) and
        then asks its BMC; powering on asks the BMC and records the new state only
        once the BMC reports the host on. Both repeat safely: a host already off
        (or on) at its BMC is left as it is."""
        try:
            current = self._states.get_host(host)
        except NotFound as error:
            raise DriverError(f"unknown host {host!r}") from error
        powering_off = state == HostState.OFF
        powering_on = current.state == HostState.OFF and state != HostState.OFF
        power = self._power if self._power is not None and self._power.controls(host) else None
        if (powering_off or powering_on) and power is None and state != current.state:
            raise DriverError(
                f"cannot power {host} {'off' if powering_off else 'on'}: "
                "libvirt has no power control and no BMC is configured for it "
                "(power.hosts in the configuration)"
            )
        if powering_on and power is not None:
            log.info("powering %s on through its BMC", host)
            power.power_on(host)
        self._record(current, state, reason)
        if powering_off and power is not None:
            log.info("powering %s off through its BMC", host)
            power.power_off(host, graceful=self._graceful_off)

    def _record(self, current: Host, state: HostState, reason: str | None) -> None:
        try:
            self._states.upsert_hosts([current.with_state(state, reason)])
        except InvalidTransition as error:
            raise DriverError(str(error)) from error

    # --- LiveView ---------------------------------------------------------

    def instance_now(self, instance: str) -> Instance | None:
        host = self.locate(instance)
        if host is None:
            return None
        domain = self._lookup(host, instance)
        if domain is None:
            return None  # it left between the two looks
        return self._instance(host, domain)

    def host_now(self, host: str) -> HostOccupancy:
        """libvirt's cores and memory of the host, with the state, allocation ratios
        and reservations opendrs records for it; every domain defined there (a
        stopped one keeps its place, as Nova keeps its allocation)."""
        if host not in self._uris:
            raise NotFound("host", host)
        info = self._call(host, "node info", lambda c: c.getInfo())
        try:
            record = self._states.get_host(host)
        except NotFound:
            record = Host(host, vcpus=0, memory_mb=0)
        # The use is what the domains below add up to; the record's is as old as
        # the last inventory sync.
        live = replace(
            record,
            vcpus=int(info[2]),
            memory_mb=int(info[1]),
            vcpus_used=0,
            memory_mb_used=0,
            local_gb_used=0,
        )
        domains = self._call(host, "list domains", lambda c: c.listAllDomains(0))
        return HostOccupancy(live, tuple(self._instance(host, d) for d in domains))

    # --- OperationFinder / OperationAborter --------------------------------

    def running_operation(self, instance: str) -> Operation | None:
        """The migration of `instance` this process started, or one libvirt reports
        as an outgoing migration job on its source (started before a restart)."""
        own = self._running_on_record(instance)
        if own is not None:
            return Operation(own.id, OperationState.RUNNING)
        source = self.locate(instance)
        if source is None:
            return None
        domain = self._lookup(source, instance)
        if domain is None:
            return None
        try:
            stats = domain.jobStats()
        except Exception as error:
            if _code(error) == _ERR_NO_SUPPORT:
                return None  # a driver without job stats (test:///) runs no jobs
            raise _translate(error, f"job stats of {instance}") from error
        if stats.get("type", _JOB_NONE) == _JOB_NONE:
            return None
        if stats.get("operation") != _JOB_OPERATION_MIGRATION_OUT:
            return None
        return Operation(f"libvirt-job-{source}-{instance}", OperationState.RUNNING)

    def abort_operation(self, operation_id: str) -> None:
        with self._lock:
            migration = self._migrations.get(operation_id)
        if migration is None:
            raise DriverError(f"unknown operation {operation_id!r}")
        if migration.future.done():
            raise DriverError(f"operation {operation_id} has already ended")
        domain = self._lookup(migration.source, migration.instance)
        if domain is None:
            raise DriverError(f"{migration.instance} is no longer on {migration.source}")
        self._call(migration.source, f"abort {operation_id}", lambda _: domain.abortJob())

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=False)
        for connection in self._connections.values():
            try:
                connection.close()
            except Exception:
                log.debug("closing a libvirt connection failed", exc_info=True)
        self._connections.clear()
        if self._power is not None:
            self._power.close()

    # --- plumbing --------------------------------------------------------

    def _running_on_record(self, instance: str) -> _Migration | None:
        with self._lock:
            for migration in self._migrations.values():
                if migration.instance == instance and not migration.future.done():
                    return migration
        return None

    def _connection(self, host: str) -> Any:
        connection = self._connections.get(host)
        if connection is None:
            uri = self._uris.get(host)
            if uri is None:
                raise DriverError(f"unknown host {host!r}")
            try:
                connection = self._connect(uri)
            except Exception as error:
                raise _translate(error, f"connecting to {host} ({uri})") from error
            self._connections[host] = connection
        return connection

    def _call(self, host: str, what: str, call: Callable[[Any], Any]) -> Any:
        try:
            return call(self._connection(host))
        except DriverError:
            raise
        except Exception as error:
            translated = _translate(error, f"{what} on {host}")
            if translated.transient:
                self._connections.pop(host, None)  # reconnect next time
            raise translated from error

    def _instance(self, host: str, domain: Any) -> Instance:
        found: Instance = self._call(
            host, f"info of {domain.name()}", lambda _: instance_of(host, domain)
        )
        return found

    def _lookup(self, host: str, instance: str) -> Any:
        """The domain of `instance` on `host`, None when it is not defined there."""
        connection = self._connection(host)
        try:
            return connection.lookupByName(instance)
        except Exception as error:
            if _code(error) == _ERR_NO_DOMAIN:
                return None
            translated = _translate(error, f"look up {instance} on {host}")
            if translated.transient:
                self._connections.pop(host, None)
            raise translated from error


def _active(domain: Any) -> Callable[[Any], Any]:
    return lambda _: domain.isActive()


def _code(error: Exception) -> int | None:
    """libvirt's error code of a libvirtError (None for anything else)."""
    getter = getattr(error, "get_error_code", None)
    code = getter() if callable(getter) else None
    return code if isinstance(code, int) else None


def _translate(error: Exception, what: str) -> DriverError:
    code = _code(error)
    if code is None:
        return DriverError(f"{what}: {error}")
    return DriverError(f"{what}: {error} [{code}]", transient=code in _TRANSIENT)
