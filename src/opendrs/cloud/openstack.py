"""The action side of OpenStack Nova through openstacksdk: live (or cold) migration
of a server to a named host, following it by the server's status and host, finding
and aborting in-progress live migrations, and host enable/disable as the host's
nova-compute service (os-services). Instances are named by their Nova server id.
SDK errors become DriverError: transient for 5xx, 429 and lost connections."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from opendrs.domain.errors import DriverError
from opendrs.domain.host import HostState
from opendrs.domain.ports import Operation, OperationState

log = logging.getLogger(__name__)

T = TypeVar("T")

COMPUTE_BINARY = "nova-compute"
# Server statuses while Nova moves it, and Nova's in-progress migration statuses.
_MOVING_STATUSES = frozenset({"MIGRATING", "RESIZE"})
_IN_PROGRESS = frozenset({"queued", "preparing", "running", "post-migrating", "accepted"})
_FAILED_MIGRATION = frozenset({"error", "failed", "cancelled"})


def connect(cloud: str) -> Any:
    """An openstacksdk connection to `cloud` from clouds.yaml (or OS_* variables)."""
    import openstack  # imported here: optional, and nothing runs at import

    return openstack.connect(cloud=cloud)


class NovaActions:
    """CloudActions, OperationFinder and OperationAborter on a Nova cloud.
    `block_migration` is Nova's: "auto" (the default) lets Nova decide."""

    def __init__(self, connection: Any, *, block_migration: bool | str = "auto") -> None:
        self._compute = connection.compute
        self._block = block_migration

    # --- CloudActions ----------------------------------------------------

    def start_migration(self, instance: str, destination: str, live: bool = True) -> str:
        server = self._server(instance)
        if server is None:
            raise DriverError(f"server {instance} not found")
        if server.compute_host == destination:
            raise DriverError(f"server {instance} is already on {destination}")
        if live:
            nova_call(
                f"live-migrate {instance} to {destination}",
                lambda: self._compute.live_migrate_server(
                    server, host=destination, block_migration=self._block
                ),
            )
        else:
            nova_call(
                f"migrate {instance} to {destination}",
                lambda: self._compute.migrate_server(server, host=destination),
            )
        return _operation_id(live, instance, destination)

    def operation(self, operation_id: str) -> Operation:
        live, instance, destination = _parse(operation_id)
        server = self._server(instance)
        if server is None:
            return Operation(operation_id, OperationState.FAILED, f"server {instance} is gone")
        status = str(server.status or "").upper()
        if status == "VERIFY_RESIZE" and not live:
            # A cold migration waits for confirmation; opendrs asked for the move.
            nova_call(
                f"confirm the migration of {instance}",
                lambda: self._compute.confirm_server_resize(server),
            )
            return Operation(operation_id, OperationState.RUNNING, "confirming")
        if status in _MOVING_STATUSES or server.task_state:
            return Operation(operation_id, OperationState.RUNNING)
        if server.compute_host == destination and status != "ERROR":
            return Operation(operation_id, OperationState.SUCCEEDED)
        return Operation(operation_id, OperationState.FAILED, self._why_not(server, destination))

    def locate(self, instance: str) -> str | None:
        server = self._server(instance)
        return None if server is None else server.compute_host

    def set_host_state(self, host: str, state: HostState, reason: str | None = None) -> None:
        """Enabled, disabled and maintenance map to the nova-compute service being
        enabled or disabled (maintenance says so in the reason); Nova cannot power
        hosts on or off."""
        if state == HostState.OFF:
            raise DriverError(
                f"cannot power {host} off through Nova; use a power driver (IPMI/Redfish)"
            )
        service = self._service(host)
        if state == HostState.ENABLED:
            nova_call(f"enable {host}", lambda: self._compute.enable_service(service))
            return
        why = reason or f"opendrs: {state.value}"
        if state == HostState.MAINTENANCE and "maintenance" not in why:
            why = f"maintenance: {why}"
        nova_call(
            f"disable {host}",
            lambda: self._compute.disable_service(service, disabled_reason=why),
        )

    # --- OperationFinder / OperationAborter --------------------------------

    def running_operation(self, instance: str) -> Operation | None:
        migration = self._in_progress(instance)
        if migration is None:
            return None
        destination = str(migration.dest_compute or "")
        return Operation(_operation_id(True, instance, destination), OperationState.RUNNING)

    def abort_operation(self, operation_id: str) -> None:
        live, instance, _ = _parse(operation_id)
        if not live:
            raise DriverError(f"Nova cannot abort the cold migration of {instance}")
        migration = self._in_progress(instance)
        if migration is None:
            raise DriverError(f"server {instance} has no live migration in progress")
        nova_call(
            f"abort the migration of {instance}",
            lambda: self._compute.abort_server_migration(migration, instance, ignore_missing=False),
        )

    # --- plumbing --------------------------------------------------------

    def _server(self, instance: str) -> Any:
        from openstack import exceptions

        try:
            return self._compute.get_server(instance)
        except exceptions.NotFoundException:
            return None
        except Exception as error:
            raise driver_error(error, f"get server {instance}") from error

    def _service(self, host: str) -> Any:
        found = nova_call(
            f"find the compute service of {host}",
            lambda: list(self._compute.services(binary=COMPUTE_BINARY, host=host)),
        )
        if not found:
            raise DriverError(f"host {host} has no {COMPUTE_BINARY} service")
        return found[0]

    def _in_progress(self, instance: str) -> Any:
        migrations = nova_call(
            f"list the migrations of {instance}",
            lambda: list(self._compute.server_migrations(instance)),
        )
        for migration in migrations:
            if str(migration.status or "").lower() in _IN_PROGRESS:
                return migration
        return None

    def _why_not(self, server: Any, destination: str) -> str:
        where = server.compute_host
        fault = getattr(server, "fault", None) or {}
        if isinstance(fault, dict) and fault.get("message"):
            return f"{server.id} stayed on {where}: {fault['message']}"
        migrations = nova_call(
            f"list migrations of {server.id}",
            lambda: list(self._compute.migrations(instance_uuid=server.id)),
        )
        failed = [m for m in migrations if str(m.status or "").lower() in _FAILED_MIGRATION]
        if failed:
            return f"{server.id} stayed on {where}: its migration ended {failed[-1].status}"
        return f"{server.id} is on {where}, not on {destination}"


def nova_call(what: str, call: Callable[[], T]) -> T:
    """`call`, with any SDK or connection error as a DriverError saying `what` failed
    (transient for 5xx, 429 and lost connections)."""
    try:
        return call()
    except DriverError:
        raise
    except Exception as error:
        raise driver_error(error, what) from error


def _operation_id(live: bool, instance: str, destination: str) -> str:
    return f"nova-{'live' if live else 'cold'}:{instance}:{destination}"


def _parse(operation_id: str) -> tuple[bool, str, str]:
    kind, _, rest = operation_id.partition(":")
    instance, _, destination = rest.partition(":")
    if kind not in ("nova-live", "nova-cold") or not instance:
        raise DriverError(f"unknown operation {operation_id!r}")
    return kind == "nova-live", instance, destination


def driver_error(error: Exception, what: str) -> DriverError:
    from keystoneauth1 import exceptions as ksa_exceptions
    from openstack import exceptions

    if isinstance(error, exceptions.HttpException):
        status = error.status_code or 0
        detail = error.details or error.message
        transient = status >= 500 or status == 429
        return DriverError(f"{what}: Nova answered {status}: {detail}", transient=transient)
    if isinstance(error, ksa_exceptions.ConnectionError | ksa_exceptions.ServiceUnavailable):
        return DriverError(f"{what}: cannot reach Nova: {error}", transient=True)
    if isinstance(error, exceptions.SDKException | OSError):
        return DriverError(f"{what}: {error}", transient=True)
    return DriverError(f"{what}: unexpected error: {error!r}")
