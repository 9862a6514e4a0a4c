"""Migration 0005: the evacuation_marks table comes with it and goes with its
downgrade, leaving the rest of the store as it was."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from opendrs.domain.evacuation import EvacuationMark
from opendrs.domain.host import Host
from opendrs.store.sql.database import alembic_config, head_revision, open_database
from opendrs.store.sql.repositories import SqlStore


def test_migration_0005_adds_and_removes_the_evacuation_marks(database_url: str) -> None:
    database = open_database(database_url)
    try:
        assert head_revision() == "0005_evacuation_marks"
        store = SqlStore(database)
        store.upsert_hosts([Host("m", 8, 4096)])
        store.record_evacuations([EvacuationMark("vm1", "m", "audit-1", "plan-1", 5.0)])
        with database.transaction() as conn:
            indexes = inspect(conn).get_indexes("evacuation_marks")
        assert [i["column_names"] for i in indexes] == [["host"]]

        config = alembic_config()
        with database.transaction(write=True) as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0004_audit_schedules")
        assert database.revision() == "0004_audit_schedules"
        with database.transaction() as conn:
            names = set(inspect(conn).get_table_names())
        assert "evacuation_marks" not in names
        assert store.list_hosts() == [Host("m", 8, 4096)]

        database.migrate()
        assert database.revision() == head_revision()
        # The table is back, empty: a downgrade forgets the marks.
        assert store.list_evacuations() == []
        store.record_evacuations([EvacuationMark("vm1", "m", "audit-2", "plan-2", 9.0)])
        assert [m.plan_id for m in store.list_evacuations(host="m")] == ["plan-2"]
    finally:
        database.close()
