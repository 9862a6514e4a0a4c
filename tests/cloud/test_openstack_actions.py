"""The Nova driver through the real openstacksdk over HTTP, against recorded
exchanges shaped by Nova's API reference (tests/cloud/fixtures/nova/*.json)."""

from __future__ import annotations

import json

# A test dependency (the `openstack` extra): missing, the module fails to import, loudly.
import openstack  # noqa: F401
import pytest

from fakes.nova_replay import FIXTURES, nova_replay, sdk_connection
from opendrs.cloud.openstack import NovaActions
from opendrs.domain.errors import DriverError
from opendrs.domain.host import HostState
from opendrs.domain.ports import OperationState

# The SDK warns about its own deprecations; they say nothing about this driver.
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


def expected_body(fixture: str, method: str) -> object:
    for exchange in json.loads((FIXTURES / f"{fixture}.json").read_text())["exchanges"]:
        if exchange["request"]["method"] == method and "expected_body" in exchange["request"]:
            return exchange["request"]["expected_body"]
    raise AssertionError(f"{fixture} records no {method} body")


def test_a_live_migration_is_requested_and_followed_to_its_end() -> None:
    with nova_replay("live_migration") as replay:
        nova = NovaActions(sdk_connection(replay))
        operation = nova.start_migration("s1", "c2")
        assert operation == "nova-live:s1:c2"
        assert nova.operation(operation).state == OperationState.RUNNING
        assert nova.operation(operation).state == OperationState.SUCCEEDED
        assert nova.locate("s1") == "c2"
    [post] = replay.requests("POST")
    assert post.path == "/servers/s1/action"
    assert post.body == expected_body("live_migration", "POST")
    assert post.microversion is not None and post.microversion.startswith("compute 2.")


def test_a_rolled_back_migration_fails_with_novas_migration_status() -> None:
    with nova_replay("failed_migration") as replay:
        nova = NovaActions(sdk_connection(replay))
        operation = nova.start_migration("s1", "c2")
        result = nova.operation(operation)
    assert result.state == OperationState.FAILED
    assert result.message == "s1 stayed on c1: its migration ended error"


def test_in_progress_migrations_are_found_and_aborted() -> None:
    with nova_replay("in_progress") as replay:
        nova = NovaActions(sdk_connection(replay))
        found = nova.running_operation("s1")
        assert found is not None
        assert (found.id, found.state) == ("nova-live:s1:c2", OperationState.RUNNING)
        nova.abort_operation(found.id)
        assert nova.running_operation("s2") is None
        with pytest.raises(DriverError, match="no live migration in progress"):
            nova.abort_operation("nova-live:s2:c2")
    assert [s.path for s in replay.requests("DELETE")] == ["/servers/s1/migrations/3"]


def test_host_states_are_the_compute_services_status() -> None:
    with nova_replay("services") as replay:
        nova = NovaActions(sdk_connection(replay))
        nova.set_host_state("c1", HostState.MAINTENANCE, "kernel update")
        nova.set_host_state("c1", HostState.ENABLED)
        with pytest.raises(DriverError, match="host c9 has no nova-compute service"):
            nova.set_host_state("c9", HostState.DISABLED)
        with pytest.raises(DriverError, match="cannot power c1 off through Nova"):
            nova.set_host_state("c1", HostState.OFF)
    puts = replay.requests("PUT")
    assert [p.body for p in puts] == [
        {"status": "disabled", "disabled_reason": "maintenance: kernel update"},
        {"status": "enabled"},
    ]


def test_refusals_are_driver_errors_transient_only_when_nova_is_overloaded() -> None:
    with nova_replay("refusals") as replay:
        nova = NovaActions(sdk_connection(replay))
        with pytest.raises(DriverError, match="Nova answered 409") as conflict:
            nova.start_migration("s1", "c2")
        assert not conflict.value.transient
        assert "task_state migrating" in str(conflict.value)
        with pytest.raises(DriverError, match="Nova answered 503") as overloaded:
            nova.start_migration("s3", "c2")
        assert overloaded.value.transient
        assert nova.locate("gone") is None
        with pytest.raises(DriverError, match="server gone not found"):
            nova.start_migration("gone", "c2")
        with pytest.raises(DriverError, match="unknown operation"):
            nova.operation("libvirt-migration-1")


def test_an_unreachable_nova_is_a_transient_error() -> None:
    with nova_replay() as replay:
        connection = sdk_connection(replay)
    # The server is gone now.
    with pytest.raises(DriverError) as caught:
        NovaActions(connection).locate("s1")
    assert caught.value.transient
