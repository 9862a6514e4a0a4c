"""libvirt's action side: on libvirt's test:/// driver where it goes (finding VMs
across hosts, errors of a migration the test driver refuses), and on a stand-in
domain for what it cannot do (the flags and parameters of virDomainMigrateToURI3,
a migration running then finishing, abort, adopting a running migration job)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

# A test dependency (the `libvirt` extra): missing, the module fails to import, loudly.
import libvirt  # noqa: F401
import pytest

from fakes.repositories import MemoryRepositories
from opendrs.cloud import libvirt_actions as la
from opendrs.cloud.libvirt_actions import LibvirtActions, MigrationOptions
from opendrs.domain.errors import DriverError
from opendrs.domain.host import Host, HostState
from opendrs.domain.ports import OperationState

FIXTURES = Path(__file__).parent / "fixtures"
TEST_HOSTS = {
    "src": f"test://{FIXTURES / 'actions_src.xml'}",
    "dst": f"test://{FIXTURES / 'actions_dst.xml'}",
}


def run_now(call: Callable[[], None]) -> Future[None]:
    future: Future[None] = Future()
    try:
        call()
        future.set_result(None)
    except Exception as error:
        future.set_exception(error)
    return future


class Deferred:
    """A launcher whose migrations run only when the test says so."""

    def __init__(self) -> None:
        self.pending: list[tuple[Callable[[], None], Future[None]]] = []

    def __call__(self, call: Callable[[], None]) -> Future[None]:
        future: Future[None] = Future()
        self.pending.append((call, future))
        return future

    def finish_all(self) -> None:
        for call, future in self.pending:
            try:
                call()
                future.set_result(None)
            except Exception as error:
                future.set_exception(error)
        self.pending.clear()


class LibvirtLikeError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code

    def get_error_code(self) -> int:
        return self.code


class StandInDomain:
    def __init__(self, name: str, world: dict[str, dict[str, StandInDomain]], host: str) -> None:
        self.name, self.world, self.host = name, world, host
        self.migrations: list[tuple[str, dict[str, Any], int]] = []
        self.aborted = 0
        self.job: dict[str, int] = {"type": 0}

    def isActive(self) -> int:
        return 1

    def migrateToURI3(self, uri: str, params: dict[str, Any], flags: int) -> None:
        self.migrations.append((uri, params, flags))
        destination = next(h for h, u in URIS.items() if u == uri)
        del self.world[self.host][self.name]
        self.world[destination][self.name] = self
        self.host = destination

    def abortJob(self) -> int:
        self.aborted += 1
        return 0

    def jobStats(self) -> dict[str, int]:
        return self.job


URIS = {"a": "qemu+ssh://a/system", "b": "qemu+ssh://b/system"}


class StandInConnection:
    def __init__(self, world: dict[str, dict[str, StandInDomain]], host: str) -> None:
        self.world, self.host = world, host

    def lookupByName(self, name: str) -> StandInDomain:
        found = self.world[self.host].get(name)
        if found is None:
            raise LibvirtLikeError(f"Domain not found: {name}", la._ERR_NO_DOMAIN)
        return found

    def close(self) -> int:
        return 0


def stand_in(launch: Any, options: MigrationOptions | None = None) -> tuple[LibvirtActions, Any]:
    world: dict[str, dict[str, StandInDomain]] = {"a": {}, "b": {}}
    world["a"]["vm1"] = StandInDomain("vm1", world, "a")
    connect = {u: StandInConnection(world, h) for h, u in URIS.items()}
    repo = MemoryRepositories()
    repo.upsert_hosts([Host("a", 8, 8192), Host("b", 8, 8192)])
    actions = LibvirtActions(
        URIS, repo, options=options, connect=connect.__getitem__, launch=launch
    )
    return actions, world


def test_instances_are_found_on_test_driver_hosts() -> None:
    repo = MemoryRepositories()
    actions = LibvirtActions(TEST_HOSTS, repo, launch=run_now)
    assert actions.locate("vm-a") == "src"
    assert actions.locate("nowhere") is None
    assert actions.running_operation("vm-a") is None  # test:/// has no job stats
    actions.close()


def test_a_migration_the_test_driver_refuses_fails_with_libvirts_reason() -> None:
    actions = LibvirtActions(TEST_HOSTS, MemoryRepositories(), launch=run_now)
    operation = actions.start_migration("vm-a", "dst")
    result = actions.operation(operation)
    assert result.state == OperationState.FAILED
    assert "migrating vm-a to dst" in result.message
    assert "migration is not supported" in result.message
    with pytest.raises(DriverError, match="already on src"):
        actions.start_migration("vm-a", "src")
    with pytest.raises(DriverError, match="unknown destination host 'zz'"):
        actions.start_migration("vm-a", "zz")
    with pytest.raises(DriverError, match="on none of the known hosts"):
        actions.start_migration("ghost", "dst")


def test_a_live_migration_uses_peer_to_peer_persistent_auto_converging_flags() -> None:
    deferred = Deferred()
    options = MigrationOptions(bandwidth_mib_s=500, migrate_uri="tcp://{host}.migration")
    actions, world = stand_in(deferred, options)
    operation = actions.start_migration("vm1", "b")
    assert actions.operation(operation).state == OperationState.RUNNING
    assert actions.running_operation("vm1") is not None
    with pytest.raises(DriverError, match="already migrating"):
        actions.start_migration("vm1", "b")
    deferred.finish_all()
    assert actions.operation(operation).state == OperationState.SUCCEEDED
    uri, params, flags = world["b"]["vm1"].migrations[0]
    assert uri == URIS["b"]
    assert params == {"bandwidth": 500, "migrate_uri": "tcp://b.migration"}
    assert flags == (
        la.MIGRATE_LIVE
        | la.MIGRATE_PEER2PEER
        | la.MIGRATE_PERSIST_DEST
        | la.MIGRATE_UNDEFINE_SOURCE
        | la.MIGRATE_AUTO_CONVERGE
    )
    assert actions.locate("vm1") == "b"


def test_a_cold_migration_leaves_out_live_and_auto_converge() -> None:
    actions, world = stand_in(run_now, MigrationOptions(tunnelled=True))
    actions.start_migration("vm1", "b", live=False)
    _, params, flags = world["b"]["vm1"].migrations[0]
    assert params == {}
    assert flags == (
        la.MIGRATE_PEER2PEER
        | la.MIGRATE_PERSIST_DEST
        | la.MIGRATE_UNDEFINE_SOURCE
        | la.MIGRATE_TUNNELLED
    )


def test_abort_and_adopting_a_job_after_a_restart() -> None:
    deferred = Deferred()
    actions, world = stand_in(deferred)
    operation = actions.start_migration("vm1", "b")
    actions.abort_operation(operation)
    assert world["a"]["vm1"].aborted == 1
    with pytest.raises(DriverError, match="unknown operation"):
        actions.abort_operation("nope")

    # A new process knows nothing of that migration, but libvirt's job says it runs.
    restarted, world = stand_in(Deferred())
    world["a"]["vm1"].job = {"type": 2, "operation": la._JOB_OPERATION_MIGRATION_OUT}
    found = restarted.running_operation("vm1")
    assert found is not None and found.state == OperationState.RUNNING
    world["a"]["vm1"].job = {"type": 0}
    assert restarted.running_operation("vm1") is None


def test_host_enable_and_disable_are_opendrs_state_and_power_is_refused() -> None:
    actions, _ = stand_in(run_now)
    actions.set_host_state("a", HostState.MAINTENANCE, "kernel update")
    host = actions._states.get_host("a")
    assert (host.state, host.disabled_reason) == (HostState.MAINTENANCE, "kernel update")
    actions.set_host_state("a", HostState.ENABLED)
    with pytest.raises(DriverError, match="libvirt has no power control"):
        actions.set_host_state("a", HostState.OFF)
    with pytest.raises(DriverError, match="unknown host 'zz'"):
        actions.set_host_state("zz", HostState.DISABLED)


def test_a_lost_connection_is_a_transient_error() -> None:
    def refuse(uri: str) -> Any:
        raise LibvirtLikeError(f"unable to connect to {uri}", la._ERR_NO_CONNECT)

    actions = LibvirtActions(URIS, MemoryRepositories(), connect=refuse, launch=run_now)
    with pytest.raises(DriverError) as caught:
        actions.locate("vm1")
    assert caught.value.transient
    assert "connecting to a (qemu+ssh://a/system)" in str(caught.value)
