"""CepStateStore: the CEP engine's per (rule, series) state in SQL, written in
small batches after each evaluation and read back when a worker starts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from opendrs.domain.clock import Clock, WallClock
from opendrs.store.sql import tables as t
from opendrs.store.sql.database import Database

_CHUNK = 200


class CepStateStore:
    """Implements domain.ports.CepStateRepository on one database."""

    def __init__(self, database: Database, clock: Clock | None = None) -> None:
        self._db = database
        self._clock: Clock = clock or WallClock()

    def save_cep_state(
        self, changed: Sequence[Mapping[str, Any]], removed: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Upsert the changed tracks (as `CepEngine.snapshot` gives them) and delete
        the removed (rule, entity) keys, in one transaction."""
        if not changed and not removed:
            return
        now = self._clock.now()
        rows = [
            {
                "rule": str(entry["rule"]),
                "entity": str(entry["entity"]),
                "version": str(entry.get("version", "")),
                "state": dict(entry),
                "updated_at": now,
            }
            for entry in changed
        ]
        dialect = postgresql if self._db.dialect == "postgresql" else sqlite
        with self._db.transaction(write=True) as conn:
            for start in range(0, len(removed), _CHUNK):
                chunk = removed[start : start + _CHUNK]
                conn.execute(
                    delete(t.cep_state).where(
                        or_(
                            *(
                                and_(t.cep_state.c.rule == rule, t.cep_state.c.entity == entity)
                                for rule, entity in chunk
                            )
                        )
                    )
                )
            if rows:
                statement = dialect.insert(t.cep_state)
                upsert = statement.on_conflict_do_update(
                    index_elements=["rule", "entity"],
                    set_={
                        name: statement.excluded[name]
                        for name in ("version", "state", "updated_at")
                    },
                )
                conn.execute(upsert, rows)

    def load_cep_state(self) -> list[dict[str, Any]]:
        query = select(t.cep_state.c.state).order_by(t.cep_state.c.rule, t.cep_state.c.entity)
        with self._db.transaction() as conn:
            return [dict(row.state) for row in conn.execute(query)]
