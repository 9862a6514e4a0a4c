"""Opening databases: migrations from empty to head, idempotent re-opening, the schema
the migrations build matching the tables the code uses, and clear errors for bad URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from opendrs.domain.errors import InvalidInput
from opendrs.domain.host import Host
from opendrs.store.sql import tables
from opendrs.store.sql.database import (
    alembic_config,
    head_revision,
    mask_password,
    open_database,
)
from opendrs.store.sql.repositories import SqlStore
from postgres_schema import SERVER, fresh_schema


def test_an_empty_database_is_migrated_to_head(database_url: str) -> None:
    database = open_database(database_url)
    try:
        assert database.revision() == head_revision()
        assert head_revision() is not None
        with database.transaction() as conn:
            names = set(inspect(conn).get_table_names())
        assert names == {*tables.metadata.tables, "alembic_version"}
    finally:
        database.close()


def test_reopening_a_migrated_database_changes_nothing(database_url: str) -> None:
    first = open_database(database_url)
    SqlStore(first).upsert_hosts([Host("h1", 8, 4096)])
    first.close()

    for _ in range(2):
        again = open_database(database_url)
        try:
            assert again.revision() == head_revision()
            assert SqlStore(again).list_hosts() == [Host("h1", 8, 4096)]
        finally:
            again.close()


def test_the_migrated_schema_is_the_schema_the_code_uses(database_url: str) -> None:
    database = open_database(database_url)
    try:
        with database.transaction() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    finally:
        database.close()
    assert differences == []


def test_migrations_go_down_to_empty_and_up_again(database_url: str) -> None:
    database = open_database(database_url)
    try:
        config = alembic_config()
        with database.transaction(write=True) as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        with database.transaction() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        assert database.revision() is None
        database.migrate()
        assert database.revision() == head_revision()
    finally:
        database.close()


def test_foreign_keys_are_enforced(database_url: str) -> None:
    database = open_database(database_url)
    try:
        with pytest.raises(IntegrityError), database.engine.begin() as conn:
            conn.execute(
                tables.action_journal.insert().values(
                    plan_id="no-such-plan", action_id="a", state="ONGOING", message="", time=0.0
                )
            )
    finally:
        database.close()


def test_sqlite_files_use_write_ahead_logging(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'wal.db'}")
    try:
        with database.transaction() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        database.close()


def test_a_database_from_a_newer_opendrs_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    database = open_database(url)
    with database.transaction(write=True) as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    database.close()

    with pytest.raises(InvalidInput, match=r"0999.*newer opendrs"):
        open_database(url)


def test_plain_postgresql_urls_use_psycopg() -> None:
    with fresh_schema() as url:
        plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
        database = open_database(plain)
        try:
            assert database.engine.dialect.driver == "psycopg"
            assert database.revision() == head_revision()
        finally:
            database.close()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("not a url", "not a database URL"),
        ("", "not a database URL"),
        ("mysql://root:hunter2@db/opendrs", "unsupported database 'mysql'"),
        ("postgresql+nosuchdriver://postgres@127.0.0.1/test", "no driver"),
    ],
)
def test_a_bad_url_is_named_in_a_clear_error(url: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says) as caught:
        open_database(url)
    assert caught.value.source == "database.url"
    assert "hunter2" not in str(caught.value)


def test_an_unreachable_server_is_named_with_its_password_masked() -> None:
    with pytest.raises(InvalidInput) as caught:
        open_database("postgresql://opendrs:s3cret@127.0.0.1:1/opendrs")
    message = str(caught.value)
    assert "s3cret" not in message
    assert "postgresql+psycopg://opendrs:***@127.0.0.1:1/opendrs" in message


def test_a_wrong_database_name_is_named() -> None:
    with fresh_schema():  # the server must be up for this to be about the name
        missing = SERVER.rsplit("/", 1)[0] + "/opendrs_no_such_db"
        with pytest.raises(InvalidInput, match="opendrs_no_such_db"):
            open_database(missing)


def test_a_sqlite_file_in_a_missing_folder_is_named(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(InvalidInput, match="unable to open") as caught:
        open_database(f"sqlite:///{path}")
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("garbage://a:b:c@h", "garbage://a:***@h"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_passwords_are_masked_even_in_urls_that_do_not_parse(url: str, masked: str) -> None:
    assert mask_password(url) == masked
