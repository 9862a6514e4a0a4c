"""A role's wall-clock loop: a failing round is counted and the next still comes,
a preparation is retried until it succeeds once, stopping waits for the round in
progress; and a serialized handler never runs while its lock is held."""

from __future__ import annotations

import threading

import pytest

from opendrs.services.server_loop import RoleLoop, serialized

WAIT = 30.0  # seconds a thread may take to get somewhere; never asserted on


class Flaky:
    """Fails its first `failures` calls, then counts successes; `rounds` is set at
    each call so a test can wait for the loop to come round again."""

    def __init__(self, failures: int) -> None:
        self.left = failures
        self.calls = 0
        self.rounds = threading.Semaphore(0)

    def __call__(self) -> None:
        self.calls += 1
        self.rounds.release()
        if self.left:
            self.left -= 1
            raise RuntimeError(f"failure {self.calls}")


def test_a_failing_round_is_counted_and_the_next_still_runs() -> None:
    work = Flaky(failures=2)
    loop = RoleLoop("inventory", work, 60.0)
    assert not loop.run_round()
    assert not loop.run_round()
    assert loop.run_round()
    assert (loop.rounds, loop.failures, work.calls) == (3, 2, 3)
    assert loop.last_error == "RuntimeError: failure 2"


def test_a_round_that_reports_failure_is_counted() -> None:
    loop = RoleLoop("inventory", lambda: False, 60.0)
    assert not loop.run_round()
    assert loop.failures == 1


def test_the_preparation_is_retried_until_it_succeeds_once() -> None:
    prepare = Flaky(failures=1)
    work = Flaky(failures=0)
    loop = RoleLoop("applier", work, 60.0, prepare=prepare)
    assert not loop.run_round()  # resume failed: no advance yet
    assert work.calls == 0
    assert loop.run_round()
    assert loop.run_round()
    assert (prepare.calls, work.calls, loop.failures) == (2, 2, 1)


def test_a_running_loop_survives_failures_and_stops_cleanly() -> None:
    work = Flaky(failures=3)
    loop = RoleLoop("decision", work, 0.01)
    loop.start()
    for _ in range(5):
        assert work.rounds.acquire(timeout=WAIT)
    assert loop.running
    assert loop.stop(WAIT)
    assert not loop.running
    assert loop.failures == 3
    assert loop.rounds >= 5
    with pytest.raises(RuntimeError, match="already running"):
        loop.start()


def test_stop_reports_a_round_that_does_not_end_in_time() -> None:
    entered, release = threading.Event(), threading.Event()

    def stuck() -> None:
        entered.set()
        release.wait(WAIT)

    loop = RoleLoop("applier", stuck, 0.01)
    loop.start()
    assert entered.wait(WAIT)
    assert not loop.stop(0.05)
    release.set()
    assert loop.stop(WAIT)


def test_an_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="role ingest: interval must be positive"):
        RoleLoop("ingest", lambda: None, 0)


def test_a_serialized_handler_waits_for_the_lock() -> None:
    lock = threading.Lock()
    seen: list[int] = []
    handler = serialized(lock, seen.append)
    with lock:
        worker = threading.Thread(target=handler, args=(1,))
        worker.start()
        worker.join(0.05)
        assert seen == []  # held back while the flush holds the lock
    worker.join(WAIT)
    assert seen == [1]
