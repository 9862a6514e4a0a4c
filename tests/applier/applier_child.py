"""An applier in its own process, for the kill -9 tests: it reaches the cloud (and
the clock) through a multiprocessing manager served by the test, journals to the
real database, and at the chosen journal write announces itself on stdout and
waits there to be killed.

Usage: applier_child.py DB_URL HOST PORT AUTHKEY PLAN_ID WRITE before|after
"""

from __future__ import annotations

import sys
from multiprocessing.managers import BaseManager
from typing import Any

from opendrs.applier import PlanExecutor
from opendrs.domain.action import FINAL_PLAN_STATES, Action, PlanState
from opendrs.store.sql.database import open_database
from opendrs.store.sql.repositories import SqlStore


class CloudClient(BaseManager):
    pass


CloudClient.register("cloud")
CloudClient.register("clock")


class AnnouncingStore:
    """The real store, which stops at the chosen write (before or after it)."""

    def __init__(self, store: SqlStore, stop_at: int, before: bool) -> None:
        self._store = store
        self._stop_at = stop_at
        self._before = before
        self._writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _write(self, write: Any) -> None:
        self._writes += 1
        due = self._writes == self._stop_at
        if due and self._before:
            self._wait_for_death()
        write()
        if due:
            self._wait_for_death()

    def _wait_for_death(self) -> None:
        print(f"BOUNDARY {self._writes}", flush=True)
        sys.stdin.readline()  # the parent kills us instead of answering
        raise SystemExit("the test should have killed this process")

    def journal_action(self, action: Action) -> None:
        self._write(lambda: self._store.journal_action(action))

    def set_plan_state(self, plan_id: str, state: PlanState, message: str = "") -> None:
        self._write(lambda: self._store.set_plan_state(plan_id, state, message))


def main(argv: list[str]) -> int:
    url, host, port, authkey, plan_id, write, when = argv
    client = CloudClient(address=(host, int(port)), authkey=authkey.encode())
    client.connect()
    cloud, clock = client.cloud(), client.clock()  # type: ignore[attr-defined]
    store = AnnouncingStore(
        SqlStore(open_database(url, migrate=False), clock), int(write), when == "before"
    )
    executor = PlanExecutor(store, cloud, clock)  # type: ignore[arg-type]
    executor.start(plan_id)
    for _ in range(10_000):
        if executor.advance(plan_id).state in FINAL_PLAN_STATES:
            print("FINISHED", flush=True)
            return 0
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
