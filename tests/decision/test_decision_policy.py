"""Audit-wide parameters: scope by hosts, zones and aggregates; the migration and
byte budgets; what holds an instance in place (never_migrate, state, ping-pong)."""

import pytest
from decision_builders import node, vm

from opendrs.decision.policy import AuditParameters, MoveBudget, hold_reason, resolve_scope
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidInput
from opendrs.domain.instance import InstanceState

CLUSTER = Cluster.of(
    [
        node("a1", availability_zone="az1", aggregates=("gpu",)),
        node("a2", availability_zone="az1"),
        node("b1", availability_zone="az2", aggregates=("gpu",)),
    ],
    [],
)


def test_scope_mixes_hosts_zones_and_aggregates() -> None:
    assert resolve_scope(CLUSTER, ()) == ["a1", "a2", "b1"]
    assert resolve_scope(CLUSTER, ("zone:az1",)) == ["a1", "a2"]
    assert resolve_scope(CLUSTER, ("aggregate:gpu",)) == ["a1", "b1"]
    assert resolve_scope(CLUSTER, ("a2", "aggregate:gpu")) == ["a1", "a2", "b1"]


@pytest.mark.parametrize("entry", ["zone:az9", "aggregate:none", "c7"])
def test_unknown_scope_entries_are_named(entry: str) -> None:
    with pytest.raises(InvalidInput, match=entry.split(":")[-1]) as caught:
        resolve_scope(CLUSTER, (entry,), "strategy x")
    assert caught.value.field == "parameters.scope"


def test_budgets_count_migrations_and_bytes() -> None:
    small, big = vm("s", "a1", memory_mb=1024), vm("b", "a1", memory_mb=4096)
    budget = MoveBudget(max_migrations=2, max_bytes=5 * 1024**3)
    assert budget.refusal([small, big]) == ""
    assert "at most 2 migration" in budget.refusal([small, big, small])
    budget.spend([big])
    assert "bytes" in budget.refusal([vm("c", "a1", memory_mb=2048)])
    assert budget.refusal([small]) == ""
    assert MoveBudget().refusal([big] * 100) == ""


def test_negative_budgets_are_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        AuditParameters(max_migrations=-1)
    assert caught.value.field == "parameters.max_migrations"


def test_what_holds_an_instance() -> None:
    p = AuditParameters(recently_moved=("moved",))
    assert hold_reason(vm("free", "a1"), p) == ""
    assert "never_migrate" in hold_reason(vm("x", "a1", never_migrate=True), p, hard=True)
    assert "cannot migrate" in hold_reason(vm("x", "a1", state=InstanceState.ERROR), p)
    assert "anti-ping-pong" in hold_reason(vm("moved", "a1"), p)
    # A hard rule (evacuation) overrides the ping-pong hold, never never_migrate.
    assert hold_reason(vm("moved", "a1"), p, hard=True) == ""
