"""What SqlStore promises beyond the repository contract: the journal, stored
derived columns, validation of what it is given, durability and use from threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import select, text

from opendrs.domain.action import Action, ActionPlan, ActionState, ActionType
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import InvalidInput, NotFound, StoreError
from opendrs.domain.host import Host
from opendrs.domain.instance import Flavor, Instance
from opendrs.store.sql import tables
from opendrs.store.sql.database import Database, open_database
from opendrs.store.sql.repositories import JournalEntry, SqlStore
from postgres_schema import fresh_schema


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = open_database(database_url)
    yield db
    db.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1000.0)


@pytest.fixture
def store(database: Database, clock: ManualClock) -> SqlStore:
    return SqlStore(database, clock)


def a_plan(n_actions: int = 2) -> ActionPlan:
    moves = tuple(
        Action(ActionType.MIGRATE, {"instance": f"vm{n}", "destination": "h2"})
        for n in range(n_actions)
    )
    return ActionPlan("audit-1", moves)


def test_the_journal_lists_every_transition_in_order_at_clock_time(
    store: SqlStore, clock: ManualClock
) -> None:
    plan = a_plan()
    store.save_plan(plan)
    first, second = store.get_plan(plan.id).actions

    started = first.moved_to(ActionState.ONGOING, clock.now(), "migrating")
    store.journal_action(started)
    clock.advance(30)
    store.journal_action(started.moved_to(ActionState.SUCCEEDED, clock.now(), "done"))
    clock.advance(1)
    store.journal_action(second.moved_to(ActionState.SKIPPED, clock.now(), "not needed"))

    assert store.journal(plan.id) == [
        JournalEntry(first.id, ActionState.ONGOING, "migrating", 1000.0),
        JournalEntry(first.id, ActionState.SUCCEEDED, "done", 1030.0),
        JournalEntry(second.id, ActionState.SKIPPED, "not needed", 1031.0),
    ]
    assert type(store.journal(plan.id)[0].state) is ActionState


def test_the_journal_survives_resaving_the_plan(store: SqlStore, clock: ManualClock) -> None:
    plan = a_plan()
    store.save_plan(plan)
    action = store.get_plan(plan.id).actions[0]
    store.journal_action(action.moved_to(ActionState.ONGOING, clock.now()))
    store.save_plan(replace(plan, actions=plan.actions[1:]))

    assert [entry.action_id for entry in store.journal(plan.id)] == [action.id]


def test_an_action_unknown_to_its_plan_is_not_found_and_not_journaled(store: SqlStore) -> None:
    plan = a_plan()
    store.save_plan(plan)
    stray = Action(ActionType.NOP, {}, plan_id=plan.id, state=ActionState.ONGOING)

    with pytest.raises(NotFound) as caught:
        store.journal_action(stray)

    assert (caught.value.kind, caught.value.key) == ("action", stray.id)
    assert store.journal(plan.id) == []
    assert store.get_plan(plan.id).actions == tuple(
        replace(a, plan_id=plan.id) for a in plan.actions
    )


def test_the_journal_of_an_unknown_plan_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.journal("nope")


def test_hosts_store_free_ram_and_disk_and_when_they_were_written(
    store: SqlStore, database: Database, clock: ManualClock
) -> None:
    store.upsert_hosts([Host("h1", 8, 4096, local_gb=100, memory_mb_used=1024, local_gb_used=40)])
    clock.advance(5)
    store.update_metrics("h1", {"power": 120.0})

    with database.transaction() as conn:
        row = conn.execute(
            select(
                tables.hosts.c.free_ram_mb, tables.hosts.c.free_disk_gb, tables.hosts.c.updated_at
            )
        ).one()
    assert tuple(row) == (3072, 60, 1005.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "fast"])
def test_a_metric_that_is_not_a_finite_number_is_refused(store: SqlStore, bad: object) -> None:
    store.upsert_hosts([Host("h1", 8, 4096, metrics={"power": 1.0})])

    with pytest.raises(InvalidInput, match="metric 'power'"):
        store.update_metrics("h1", {"power": bad})  # type: ignore[dict-item]
    with pytest.raises(InvalidInput, match="metric 'power'"):
        store.upsert_hosts([Host("h1", 8, 4096, metrics={"power": bad})])  # type: ignore[dict-item]
    assert store.get_host("h1").metrics == {"power": 1.0}


def test_json_values_that_are_not_json_are_refused(store: SqlStore) -> None:
    plan = a_plan()
    broken = replace(plan.actions[0], parameters={"when": float("nan")})

    with pytest.raises(InvalidInput, match="cannot store"):
        store.save_plan(replace(plan, actions=(broken,)))
    with pytest.raises(NotFound):
        store.get_plan(plan.id)


def test_an_action_given_twice_in_a_plan_is_refused(store: SqlStore) -> None:
    plan = a_plan()
    with pytest.raises(InvalidInput, match="appears twice"):
        store.save_plan(replace(plan, actions=(plan.actions[0], plan.actions[0])))


def test_a_negative_limit_is_refused(store: SqlStore) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        store.history(limit=-1)


def test_writes_are_durable_across_reopening(database_url: str) -> None:
    first = open_database(database_url)
    SqlStore(first).upsert_hosts([Host("h1", 8, 4096)])
    first.close()

    again = open_database(database_url)
    try:
        assert SqlStore(again).list_hosts() == [Host("h1", 8, 4096)]
    finally:
        again.close()


def test_a_broken_database_raises_store_error(store: SqlStore, database: Database) -> None:
    with database.transaction(write=True) as conn:
        conn.execute(text("DROP TABLE server_groups"))

    with pytest.raises(StoreError) as caught:
        store.list_groups()
    assert "server_groups" in str(caught.value)
    assert caught.value.transient is False


def test_writers_and_a_reader_on_other_threads_do_not_collide(store: SqlStore) -> None:
    names = [f"vm{n}" for n in range(20)]
    store.upsert_hosts([Host("h1", 64, 262144)])
    store.upsert_instances([Instance(n, "h1", Flavor("m1", 1, 512)) for n in names])
    failures: list[BaseException] = []

    def write(offset: int) -> None:
        try:
            for step in range(15):
                for name in names[offset::2]:
                    store.update_metrics(name, {"cpu_util": float(step), f"w{offset}": 1.0})
        except BaseException as exc:
            failures.append(exc)

    def read() -> None:
        try:
            for _ in range(30):
                assert len(store.list_instances(host="h1")) == len(names)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in (0, 1)]
    threads.append(threading.Thread(target=read))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert {tuple(sorted(i.metrics)) for i in store.list_instances()} == {
        ("cpu_util", "w0"),
        ("cpu_util", "w1"),
    }
    assert {i.metrics["cpu_util"] for i in store.list_instances()} == {14.0}


def test_an_in_memory_database_is_shared_by_threads() -> None:
    database = open_database("sqlite://")
    store = SqlStore(database)
    store.upsert_hosts([Host("h1", 8, 4096)])
    seen: list[list[Host]] = []
    reader = threading.Thread(target=lambda: seen.append(store.list_hosts()))
    reader.start()
    reader.join()
    database.close()

    assert seen == [[Host("h1", 8, 4096)]]


def test_a_nul_character_is_refused_with_a_clear_error_on_postgresql() -> None:
    with fresh_schema() as url:
        database = open_database(url)
        try:
            with pytest.raises(InvalidInput, match="NUL"):
                SqlStore(database).upsert_hosts([Host("bad\x00name", 8, 4096)])
        finally:
            database.close()
