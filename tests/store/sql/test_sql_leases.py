"""Leases in the database: all-or-nothing per plan, so two plans never touch the same
VM or host at once while plans on disjoint hosts run side by side."""

from __future__ import annotations

import threading

import pytest

from fakes.driver import FakeDriver
from fakes.plans import migrate, saved_plan
from opendrs.applier import PlanExecutor
from opendrs.domain.action import FINAL_PLAN_STATES, ActionState, PlanState
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import ResourceBusy, StoreError
from opendrs.domain.ports import LeaseRepository
from opendrs.store.sql.database import open_database
from opendrs.store.sql.repositories import SqlStore


def test_leases_are_all_or_nothing_and_idempotent(database_url: str) -> None:
    store = SqlStore(open_database(database_url))
    assert isinstance(store, LeaseRepository)
    assert store.acquire_leases("p1", ["host:a", "instance:x"]) == {}
    assert store.acquire_leases("p1", ["host:a", "instance:x", "host:b"]) == {}
    assert store.acquire_leases("p2", ["host:c", "host:b"]) == {"host:b": "p1"}
    # Nothing of p2's request was taken.
    assert store.list_leases() == {"host:a": "p1", "instance:x": "p1", "host:b": "p1"}
    assert store.release_leases("p1") == 3
    assert store.acquire_leases("p2", ["host:c", "host:b"]) == {}
    assert store.list_leases() == {"host:c": "p2", "host:b": "p2"}


def test_racing_plans_never_both_get_a_shared_host(database_url: str) -> None:
    database = open_database(database_url)
    winners: list[str] = []
    lock = threading.Lock()

    def contend(owner: str, resources: list[str]) -> None:
        store = SqlStore(database)
        try:
            granted = store.acquire_leases(owner, resources) == {}
        except StoreError as error:
            assert error.transient  # a serialisation failure: try again later
            granted = False
        if granted:
            with lock:
                winners.append(owner)

    for round_ in range(15):
        threads = [
            threading.Thread(target=contend, args=(f"r{round_}-{k}", ["host:shared", f"host:{k}"]))
            for k in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len([w for w in winners if w.startswith(f"r{round_}-")]) <= 1
        store = SqlStore(database)
        for owner in set(store.list_leases().values()):
            store.release_leases(owner)
    assert winners  # the race was won at least once


def test_plans_on_disjoint_hosts_run_together_and_overlapping_ones_wait(
    database_url: str,
) -> None:
    clock = ManualClock()
    store = SqlStore(open_database(database_url), clock)
    driver = FakeDriver({"x": "a", "y": "c", "z": "b"}, polls=3)
    executor = PlanExecutor(store, driver, clock)
    first = saved_plan(store, migrate("x", "a", "b"), at=1.0)
    disjoint = saved_plan(store, migrate("y", "c", "d"), at=2.0)
    overlapping = saved_plan(store, migrate("z", "b", "e"), at=3.0)

    executor.start(first.id)
    executor.start(disjoint.id)
    with pytest.raises(ResourceBusy, match=r"host:b \(held by plan") as caught:
        executor.start(overlapping.id)
    assert caught.value.held == {"host:b": first.id}
    assert store.get_plan(overlapping.id).state == PlanState.RECOMMENDED

    executor.advance_all()
    assert len(driver.running()) == 2  # both plans migrate at the same time
    for _ in range(10):
        executor.advance_all()
    assert store.get_plan(first.id).state == PlanState.SUCCEEDED
    assert set(store.list_leases().values()) <= {disjoint.id}

    executor.start(overlapping.id)
    for _ in range(10):
        if store.get_plan(overlapping.id).state in FINAL_PLAN_STATES:
            break
        executor.advance_all()
    final = store.get_plan(overlapping.id)
    assert final.state == PlanState.SUCCEEDED
    assert final.actions[0].state == ActionState.SUCCEEDED
    assert store.list_leases() == {}


def test_journal_writes_keep_the_operation_and_restart_marks(database_url: str) -> None:
    """The executor keeps what it needs to resume in the action's parameters; every
    journal write must store them."""
    clock = ManualClock()
    store = SqlStore(open_database(database_url), clock)
    plan = saved_plan(store, migrate("x", "a", "b"))
    action = plan.actions[0].moved_to(ActionState.ONGOING, 1.0)
    marked = action.__class__(
        **{
            **{f: getattr(action, f) for f in action.__dataclass_fields__},
            "parameters": {**action.parameters, "operation_id": "op-7", "restarted": True},
        }
    )
    store.journal_action(marked)
    stored = store.get_plan(plan.id).actions[0]
    assert stored.parameters["operation_id"] == "op-7"
    assert stored.parameters["restarted"] is True
    assert stored.state == ActionState.ONGOING


def test_a_submitted_plan_waits_pending_until_its_hosts_are_free(database_url: str) -> None:
    clock = ManualClock()
    store = SqlStore(open_database(database_url), clock)
    executor = PlanExecutor(store, FakeDriver({"x": "a", "z": "b"}, polls=2), clock)
    first = saved_plan(store, migrate("x", "a", "b"), at=1.0)
    second = saved_plan(store, migrate("z", "b", "c"), at=2.0)
    assert executor.submit(first.id).state == PlanState.ONGOING
    waiting = executor.submit(second.id)
    assert waiting.state == PlanState.PENDING
    assert "host:b (held by plan" in store.get_plan(second.id).message
    for _ in range(12):
        executor.advance_all()
    assert store.get_plan(first.id).state == PlanState.SUCCEEDED
    assert store.get_plan(second.id).state == PlanState.SUCCEEDED
