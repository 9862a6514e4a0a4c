"""Opening a database: the engine for a URL (SQLite tuned for one writer beside
concurrent readers, PostgreSQL through psycopg 3), the schema migrated to head by
Alembic, and short transactions whose library errors become opendrs errors."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)
from sqlalchemy.pool import StaticPool

from opendrs.domain.errors import InvalidInput, OpendrsError, StoreError

MIGRATIONS = Path(__file__).parent / "migrations"
SOURCE = "database.url"
SUPPORTED = ("sqlite:///PATH", "postgresql://USER@HOST:PORT/DB")

# An execution option on the engine used for writes: SQLite then takes the write
# lock when the transaction begins, so two writers queue on the busy timeout
# instead of failing when one upgrades its read lock.
_WRITE = "opendrs_write"
# Serialises concurrent migrations of one PostgreSQL database ("opendrs" in ASCII).
_MIGRATION_LOCK = 0x6F70656E647273
_BUSY_TIMEOUT_S = 30.0
_CONNECT_TIMEOUT_S = 10


class Database:
    """An engine with its migrations applied; hands out one transaction per call."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url  # password masked: safe to log and show
        self._writer = engine.execution_options(**{_WRITE: True})
        # Reads of several statements (a plan, then its actions) see one snapshot;
        # a read-only transaction never fails to serialise.
        self._reader = (
            engine.execution_options(isolation_level="REPEATABLE READ")
            if engine.dialect.name == "postgresql"
            else engine
        )
        # An in-memory SQLite database is one shared connection: one user at a time.
        self._serial = threading.RLock() if _is_memory(engine.url) else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Connection]:
        """A connection in a transaction that commits on leaving, rolls back on error."""
        engine = self._writer if write else self._reader
        guard: AbstractContextManager[Any] = self._serial or nullcontext()
        with guard:
            try:
                with engine.begin() as connection:
                    yield connection
            except SQLAlchemyError as exc:
                raise self._translate(exc) from exc

    def migrate(self) -> None:
        """Bring the schema to the newest revision this code knows (a no-op when there)."""
        config = alembic_config()
        try:
            with self.transaction(write=True) as connection:
                if self.dialect == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                    )
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except CommandError as exc:
            raise InvalidInput(
                f"cannot migrate {self.url}: {exc} (was it written by a newer opendrs?)",
                source=SOURCE,
            ) from exc

    def revision(self) -> str | None:
        """The schema revision the database is at (None before the first migration)."""
        with self.transaction() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def close(self) -> None:
        self.engine.dispose()

    def _translate(self, exc: SQLAlchemyError) -> OpendrsError:
        reason = _reason(exc)
        if isinstance(exc, IntegrityError | DataError):
            return InvalidInput(f"rejected by {self.url}: {reason}", source=SOURCE)
        if isinstance(exc, OperationalError | InterfaceError):
            # PostgreSQL says Operational for a lost server; SQLite also for a
            # missing table or a full disk, and only a held lock passes with time.
            transient = self.dialect != "sqlite" or "locked" in reason or "busy" in reason
            return StoreError(f"{self.url}: {reason}", transient=transient)
        if isinstance(exc, StatementError) and isinstance(exc.orig, OpendrsError):
            return exc.orig  # raised by our JSON serialiser
        if isinstance(exc, StatementError) and isinstance(exc.orig, ValueError | TypeError):
            return InvalidInput(f"cannot store a value: {reason}", source=SOURCE)
        return StoreError(f"{self.url}: {reason}")


def open_database(url: str, *, migrate: bool = True) -> Database:
    """Connect to `url` and migrate it to head. Raises InvalidInput naming the URL
    (password masked) when it is malformed, unsupported or unreachable."""
    parsed = _parse(url)
    masked = parsed.render_as_string(hide_password=True)
    try:
        engine = _engine(parsed)
    except (NoSuchModuleError, ImportError) as exc:
        raise InvalidInput(f"no driver for {masked}: {exc}", source=SOURCE) from exc
    database = Database(engine, masked)
    try:
        if migrate:
            database.migrate()
        else:
            database.revision()
    except StoreError as exc:
        database.close()
        raise InvalidInput(f"cannot open {exc}", source=SOURCE) from exc
    except BaseException:
        database.close()
        raise
    return database


def alembic_config() -> Config:
    """Alembic's configuration for our migrations, built in code (no alembic.ini)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations folder has no revisions"
    return head


def mask_password(url: str) -> str:
    """`url` with any password replaced by ***, even when it does not parse."""
    return re.sub(r"(://[^/@:]*:)[^@/]*@", r"\1***@", url)


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url.strip())
    except (ArgumentError, ValueError) as exc:
        raise InvalidInput(
            f"not a database URL: {mask_password(url)!r}; use {' or '.join(SUPPORTED)}",
            source=SOURCE,
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "postgres":  # the spelling Heroku and libpq users write
        parsed = parsed.set(drivername="postgresql")
        backend = "postgresql"
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend not in ("sqlite", "postgresql"):
        raise InvalidInput(
            f"unsupported database {backend!r} in {parsed.render_as_string(hide_password=True)}"
            f"; use {' or '.join(SUPPORTED)}",
            source=SOURCE,
        )
    return parsed


def _engine(url: URL) -> Engine:
    # allow_nan=False: PostgreSQL rejects NaN in JSON, so SQLite must too. The
    # error is ours already, as drivers pass it through unwrapped.
    def dumps(value: Any) -> str:
        try:
            return json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"cannot store {value!r} as JSON: {exc}", source=SOURCE) from exc

    if url.get_backend_name() == "postgresql":
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = _CONNECT_TIMEOUT_S
        return create_engine(
            url, json_serializer=dumps, pool_pre_ping=True, connect_args=connect_args
        )
    memory = _is_memory(url)
    engine = create_engine(
        url,
        json_serializer=dumps,
        connect_args={"check_same_thread": False, "timeout": _BUSY_TIMEOUT_S},
        **({"poolclass": StaticPool} if memory else {}),
    )
    event.listen(engine, "connect", _sqlite_connected(wal=not memory))
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connected(*, wal: bool) -> Any:
    def connected(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module, which would not BEGIN
        # before a SELECT or DDL; _sqlite_begin does it for every transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            if wal:
                # Readers (the API) never block the writer (the loop) and vice versa;
                # NORMAL still survives a killed process, only a power cut may lose
                # the last commits.
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    return connected


def _sqlite_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get(_WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _reason(exc: SQLAlchemyError) -> str:
    cause = exc.orig if isinstance(exc, DBAPIError | StatementError) else exc
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__
