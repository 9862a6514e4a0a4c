"""The wall-clock rounds of `opendrs server`'s roles: each role is one thread that
does its work every interval (sync the inventory, flush ingest, tick audits,
advance plans), survives a failing round (logged, counted, tried again next
interval) and finishes its round before it stops."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def serialized(
    lock: AbstractContextManager[object], call: Callable[[T], object]
) -> Callable[[T], None]:
    """`call` under `lock`: a bus handler that must not interleave with a flush."""

    def locked(item: T) -> None:
        with lock:
            call(item)

    return locked


class RoleLoop:
    """Runs `work()` every `interval` seconds on its own thread once started.

    `prepare()` (e.g. resuming the plans a restart left running) runs before the
    first `work()` and again each round until it succeeds once. A round that
    raises, or whose `work()` returns False, counts as a failure; the loop goes on."""

    def __init__(
        self,
        name: str,
        work: Callable[[], object],
        interval: float,
        *,
        prepare: Callable[[], object] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"role {name}: interval must be positive, got {interval}")
        self.name = name
        self.interval = interval
        self._work = work
        self._prepare = prepare
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0
        self.failures = 0
        self.last_error = ""

    def run_round(self) -> bool:
        """One round now, on the caller's thread; False when it failed."""
        self.rounds += 1
        try:
            if self._prepare is not None:
                self._prepare()
                self._prepare = None
            ok = self._work() is not False
        except Exception as error:
            self.failures += 1
            self.last_error = f"{type(error).__name__}: {error}"
            log.exception("%s round %d failed; trying again in %g s", self.name, self.rounds,
                          self.interval)  # fmt: skip
            return False
        if not ok:
            self.failures += 1
            self.last_error = "the round reported a failure"
        return ok

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"role {self.name} is already running")
        self._thread = threading.Thread(target=self._run, name=f"role-{self.name}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float) -> bool:
        """Ask the loop to stop and wait up to `timeout` seconds for the round in
        progress to end; False when it did not (the thread is a daemon)."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        return {
            "interval_seconds": self.interval,
            "rounds": self.rounds,
            "failures": self.failures,
            "last_error": self.last_error,
            "running": self.running,
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_round()
            self._stop.wait(self.interval)
