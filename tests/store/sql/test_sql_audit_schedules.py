"""Migration 0004 on SQLite and PostgreSQL: audits stored before it read back
unscheduled, scheduled audits keep their interval and run times, and it goes
down and up again."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from opendrs.domain.audit import Audit, AuditState, AuditType
from opendrs.store.sql.database import Database, alembic_config, head_revision, open_database
from opendrs.store.sql.repositories import SqlStore

BEFORE = "0003_cep_state"
SCHEDULE_COLUMNS = {"interval_seconds", "next_run_at", "last_run_at"}


def downgrade(database: Database, revision: str) -> None:
    config = alembic_config()
    with database.transaction(write=True) as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def audit_columns(database: Database) -> set[str]:
    with database.transaction() as conn:
        return {c["name"] for c in inspect(conn).get_columns("audits")}


def test_audits_from_before_the_migration_read_back_unscheduled(database_url: str) -> None:
    database = open_database(database_url)
    try:
        downgrade(database, BEFORE)
        assert not audit_columns(database) & SCHEDULE_COLUMNS
        with database.transaction(write=True) as conn:
            conn.execute(
                text(
                    "INSERT INTO audits (id, goal, strategy, audit_type, scope, parameters,"
                    " auto_trigger, state, \"trigger\", message, created_at) VALUES ('old',"
                    " 'g', 's', 'continuous', '[]', '{}', false, 'SUCCEEDED', 'continuous relief',"
                    " '', 10.0)"
                )
            )
        database.migrate()
        assert database.revision() == head_revision()

        store = SqlStore(database)
        old = store.get_audit("old")
        assert (old.state, old.interval, old.next_run_at, old.last_run_at) == (
            AuditState.SUCCEEDED,
            None,
            None,
            None,
        )
        assert store.list_scheduled_audits() == []
    finally:
        database.close()


def test_a_scheduled_audit_survives_reopening_and_the_migration_goes_down_and_up(
    database_url: str,
) -> None:
    audit = Audit(
        "overload_relief",
        "",
        audit_type=AuditType.CONTINUOUS,
        state=AuditState.ONGOING,
        created_at=100.0,
        interval=0.25,
        next_run_at=100.0,
    ).ran(100.5)
    database = open_database(database_url)
    SqlStore(database).save_audit(audit)
    database.close()

    database = open_database(database_url)
    try:
        store = SqlStore(database)
        assert store.list_scheduled_audits() == [audit]
        assert (audit.last_run_at, audit.next_run_at) == (100.5, 100.75)

        downgrade(database, BEFORE)
        assert not audit_columns(database) & SCHEDULE_COLUMNS
        assert database.revision() == BEFORE
        database.migrate()
        assert audit_columns(database) >= SCHEDULE_COLUMNS
        # Going down drops the schedule: the audit is plain again.
        again = store.get_audit(audit.id)
        assert (again.interval, again.next_run_at) == (None, None)
    finally:
        database.close()
