"""Publishes waiting for the server's confirmation: one at a time (publish returns
once the message is stored), or pipelined up to a window (publish returns once
the message is on its way; a failure is raised by a later publish or drain)."""

from __future__ import annotations

import concurrent.futures
import threading
from collections import deque
from collections.abc import Coroutine
from typing import Any

from opendrs.bus.loop import LoopThread
from opendrs.domain.errors import DriverError


class Confirmations:
    def __init__(self, loop: LoopThread, *, window: int, timeout: float, server: str) -> None:
        if window < 0:
            raise ValueError(f"the confirmation window cannot be negative, got {window}")
        self.window = window
        self._loop = loop
        self._timeout = timeout
        self._server = server
        self._pending: deque[tuple[concurrent.futures.Future[Any], str]] = deque()
        self._failed: list[DriverError] = []
        self._lock = threading.Lock()

    def send(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        """Start a publish; with no window, wait for its confirmation."""
        if self.window == 0:
            try:
                self._loop.run(coro, self._timeout + 1.0)
            except Exception as exc:
                raise self._failure(exc, what) from exc
            return
        self._raise_failed()
        future = self._loop.spawn(coro)
        with self._lock:
            self._pending.append((future, what))
            oldest = self._pending[0] if len(self._pending) > self.window else None
        if oldest is not None:
            self._reap(oldest)
        self._raise_failed()

    def wait_all(self) -> None:
        """Wait for every confirmation outstanding; raise the first failure."""
        while True:
            with self._lock:
                if not self._pending:
                    break
                oldest = self._pending[0]
            self._reap(oldest)
        self._raise_failed()

    def _reap(self, entry: tuple[concurrent.futures.Future[Any], str]) -> None:
        future, what = entry
        try:
            future.result(self._timeout + 1.0)
        except Exception as exc:
            if isinstance(exc, concurrent.futures.TimeoutError):
                future.cancel()
            with self._lock:
                self._failed.append(self._failure(exc, what))
        with self._lock:
            if self._pending and self._pending[0] is entry:
                self._pending.popleft()

    def _raise_failed(self) -> None:
        with self._lock:
            if not self._failed:
                return
            first, more = self._failed[0], len(self._failed) - 1
            self._failed.clear()
        if more:
            raise DriverError(f"{first} (and {more} more publishes failed)", transient=True)
        raise first

    def _failure(self, exc: BaseException, what: str) -> DriverError:
        if isinstance(exc, DriverError):
            return exc
        problem = "no confirmation in time" if isinstance(exc, TimeoutError) else str(exc)
        return DriverError(
            f"{self._server}: {what} failed: {type(exc).__name__}: {problem}", transient=True
        )
