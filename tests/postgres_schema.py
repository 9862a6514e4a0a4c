"""A throw-away PostgreSQL schema per test, on the server at 127.0.0.1:5432 (db `test`,
trust auth) or OPENDRS_TEST_POSTGRES_URL. An unreachable server skips the test
locally and fails it when CI=true."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from needs import unavailable

SERVER = os.environ.get(
    "OPENDRS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@functools.cache
def _unreachable() -> str | None:
    engine = create_engine(SERVER, poolclass=NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return str(exc).splitlines()[0]
    finally:
        engine.dispose()
    return None


def require_postgres() -> None:
    problem = _unreachable()
    if problem is None:
        return
    message = f"PostgreSQL at {SERVER} is unreachable: {problem}"
    unavailable(message)


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A URL whose search_path is a new, empty schema, dropped afterwards."""
    require_postgres()
    schema = f"opendrs_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(SERVER, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(SERVER).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
