"""Calls bounded by a timeout: a blocking library call (a hypervisor that stopped
answering) runs on a worker thread, and the caller gets a transient DriverError
when it takes too long instead of hanging with it."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from opendrs.domain.errors import DriverError

log = logging.getLogger(__name__)

T = TypeVar("T")

_STOP = object()


class _Job:
    __slots__ = ("call", "done", "error", "result")

    def __init__(self, call: Callable[[], Any]) -> None:
        self.call = call
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class _Worker:
    """One daemon thread running jobs in order."""

    def __init__(self, name: str) -> None:
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            if job is _STOP:
                return
            try:
                job.result = job.call()
            except BaseException as exc:  # handed to the waiting caller
                job.error = exc
            finally:
                job.done.set()


class Deadline:
    """Runs calls on one worker thread, each bounded by `timeout` seconds.

    A call past its timeout raises DriverError(transient=True); its worker is
    abandoned (a thread blocked in C cannot be killed) and a fresh one takes the
    next call. At most `max_stuck` abandoned workers may still be blocked: past
    that, calls fail at once rather than pile up threads.
    """

    def __init__(self, timeout: float, *, name: str = "driver-call", max_stuck: int = 4) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.timeout = timeout
        self._name = name
        self._max_stuck = max_stuck
        self._worker: _Worker | None = None
        self._stuck: list[_Worker] = []
        self.timeouts = 0

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """`fn()` on the worker; its exception as is, or DriverError on timeout."""
        self._stuck = [w for w in self._stuck if w.thread.is_alive()]
        if len(self._stuck) >= self._max_stuck:
            raise DriverError(
                f"{what}: {len(self._stuck)} earlier calls are still blocked; not calling",
                transient=True,
            )
        if self._worker is None:
            self._worker = _Worker(self._name)
        job = _Job(fn)
        self._worker.jobs.put(job)
        if not job.done.wait(self.timeout):
            self.timeouts += 1
            self._stuck.append(self._worker)
            self._worker.jobs.put(_STOP)  # it exits if the call ever returns
            self._worker = None
            log.warning("%s did not answer within %.1f s", what, self.timeout)
            raise DriverError(f"{what}: no answer within {self.timeout:g} s", transient=True)
        if job.error is not None:
            raise job.error
        result: T = job.result
        return result

    def close(self) -> None:
        if self._worker is not None:
            self._worker.jobs.put(_STOP)
            self._worker = None
