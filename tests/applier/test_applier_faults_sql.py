"""Fault tests of the applier on real SQLite and PostgreSQL with the real simulator:
the applier dies at every journal write of a 30-action plan (in process, and by a
real kill -9 of a separate applier process) and a fresh one finishes the plan with
every VM moved exactly once; a cloud failing 10% of calls never runs a dependent of
a failed action; a cancelled plan's report matches where the simulator left things."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from multiprocessing.managers import BaseManager
from pathlib import Path
from typing import Any

import pytest

from fakes.fault_cloud import DRAINED, WitnessCloud, sim_cloud, thirty_action_plan
from opendrs.applier import PlanExecutor
from opendrs.domain.action import (
    FINAL_PLAN_STATES,
    Action,
    ActionPlan,
    ActionState,
    ActionType,
    PlanState,
)
from opendrs.domain.clock import ManualClock
from opendrs.store.sql.database import Database, open_database
from opendrs.store.sql.repositories import SqlStore
from postgres_schema import fresh_schema

CHILD = Path(__file__).with_name("applier_child.py")
SRC = Path(__file__).parents[2] / "src"
TESTS = Path(__file__).parents[1]


@pytest.fixture(params=["sqlite", "postgres"], scope="module")
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('faults') / 'applier.db'}"
        open_database(url).close()
        yield url
    else:
        with fresh_schema() as url:
            open_database(url).close()
            yield url


@pytest.fixture(scope="module")
def database(database_url: str) -> Iterator[Database]:
    db = open_database(database_url, migrate=False)
    yield db
    db.close()


class Crash(Exception):
    """The applier process died."""


class CrashingStore:
    """The real store; the chosen journal write dies just before or just after it."""

    def __init__(self, store: SqlStore, crash_at: int | None, before: bool) -> None:
        self._store = store
        self.crash_at = crash_at
        self.before = before
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _write(self, write: Callable[[], None]) -> None:
        self.writes += 1
        due = self.writes == self.crash_at
        if due and self.before:
            raise Crash(f"before write {self.writes}")
        write()
        if due:
            raise Crash(f"after write {self.writes}")

    def journal_action(self, action: Action) -> None:
        self._write(lambda: self._store.journal_action(action))

    def set_plan_state(self, plan_id: str, state: PlanState, message: str = "") -> None:
        self._write(lambda: self._store.set_plan_state(plan_id, state, message))


class Scene:
    """A fresh simulator, its witness and a saved 30-action plan."""

    def __init__(self, database: Database, *, failure_rate: float = 0.0, seed: int = 0) -> None:
        self.clock = ManualClock()
        self.sim = sim_cloud(self.clock)
        self.cloud = WitnessCloud(self.sim, self.clock, failure_rate=failure_rate, seed=seed)
        self.store = SqlStore(database, self.clock)
        self.plan = thirty_action_plan(self.sim)
        self.store.save_plan(self.plan)

    def executor(self, store: Any = None) -> PlanExecutor:
        return PlanExecutor(store or self.store, self.cloud, self.clock)

    def finish(self, executor: PlanExecutor) -> ActionPlan:
        for _ in range(2_000):
            plan = executor.advance(self.plan.id)
            if plan.state in FINAL_PLAN_STATES:
                return plan
        raise AssertionError(f"plan {self.plan.id} did not finish")

    def restart(self) -> ActionPlan:
        """A new applier on the same database and cloud: resume, or start a plan the
        crash left unapproved, and run to the end."""
        executor = self.executor(SqlStore(self.store._db, self.clock))
        executor.resume()
        if self.store.get_plan(self.plan.id).state == PlanState.RECOMMENDED:
            executor.start(self.plan.id)
        return self.finish(executor)

    def moves(self) -> list[Action]:
        return [a for a in self.plan.actions if a.type == ActionType.MIGRATE]

    def assert_each_vm_moved_once(self, final: ActionPlan) -> None:
        assert final.state == PlanState.SUCCEEDED, final.message
        duplicated = {vm: n for vm, n in self.cloud.started.items() if n > 1}
        lost = [
            a.instance for a in self.moves() if self.sim.locate(a.instance or "") != a.destination
        ]
        assert (duplicated, lost) == ({}, [])
        assert self.sim.migrations_completed == len(self.moves()) == 26
        states = self.cloud.host_states()
        assert all(states[h] == "off" for h in DRAINED)
        # A finished plan holds no lease, even when it died just before giving them back.
        assert final.id not in self.store.list_leases().values()


def clean_run_writes(database: Database) -> int:
    scene = Scene(database)
    store = CrashingStore(scene.store, None, True)
    executor = scene.executor(store)
    executor.start(scene.plan.id)
    scene.assert_each_vm_moved_once(scene.finish(executor))
    return store.writes


def test_a_crash_at_every_journal_write_loses_and_repeats_nothing(database: Database) -> None:
    writes = clean_run_writes(database)
    assert writes >= 2 * 30  # every action journals at least its start and its end
    for crash_at in range(1, writes + 1):
        for before in (True, False):
            scene = Scene(database)
            store = CrashingStore(scene.store, crash_at, before)
            executor = scene.executor(store)
            with pytest.raises(Crash):
                executor.start(scene.plan.id)
                scene.finish(executor)
            scene.assert_each_vm_moved_once(scene.restart())


class CloudServer(BaseManager):
    pass


@pytest.mark.parametrize("boundary", [(3, True), (9, False), (20, True), (41, False), (77, True)])
def test_kill_9_of_the_applier_process_then_resume(
    database: Database, database_url: str, boundary: tuple[int, bool]
) -> None:
    write, before = boundary
    scene = Scene(database)
    server = _serve(scene)
    host, port = server.address
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    child = subprocess.Popen(
        [
            sys.executable,
            str(CHILD),
            database_url,
            host,
            str(port),
            "fault-test",
            scene.plan.id,
            str(write),
            "before" if before else "after",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = child.stdout.readline() if child.stdout else ""
        assert line.strip() == f"BOUNDARY {write}", line
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        server.stop_event.set()
        server.listener.close()
    # The plan's two state writes come first; every later write is a journal entry.
    assert len(scene.store.journal(scene.plan.id)) == write - 2 - before
    scene.assert_each_vm_moved_once(scene.restart())


def _serve(scene: Scene) -> Any:
    manager = CloudServer(address=("127.0.0.1", 0), authkey=b"fault-test")
    manager.register("cloud", callable=lambda: scene.cloud)
    manager.register("clock", callable=lambda: scene.clock)
    server = manager.get_server()
    threading.Thread(target=_serve_until_stopped, args=(server,), daemon=True).start()
    return server


def _serve_until_stopped(server: Any) -> None:
    with contextlib.suppress(SystemExit, OSError):
        server.serve_forever()


def _descendants(plan: ActionPlan, root: str) -> set[str]:
    children: dict[str, list[str]] = {}
    for action in plan.actions:
        for parent in action.parents:
            children.setdefault(parent, []).append(action.id)
    found: set[str] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


@pytest.mark.parametrize("seed", range(6))
def test_a_cloud_failing_ten_percent_of_calls_never_runs_a_dependent_of_a_failure(
    database: Database, seed: int
) -> None:
    scene = Scene(database, failure_rate=0.10, seed=seed)
    executor = scene.executor()
    executor.start(scene.plan.id)
    final = scene.finish(executor)
    assert sum(scene.cloud.injected.values()) > 0
    started = {e.action_id for e in scene.store.journal(final.id) if e.state == ActionState.ONGOING}
    failed = [a for a in final.actions if a.state == ActionState.FAILED]
    for action in failed:
        for dependent in _descendants(final, action.id):
            assert final.action(dependent).state == ActionState.SKIPPED
            assert dependent not in started
    # Whatever succeeded is true of the simulator, and nothing else moved.
    for action in final.actions:
        if action.type == ActionType.MIGRATE:
            where = scene.sim.locate(action.instance or "")
            moved = action.state == ActionState.SUCCEEDED
            assert where == (action.destination if moved else action.source), action
    assert all(n == 1 for n in scene.cloud.started.values())
    expected = PlanState.FAILED if failed else PlanState.SUCCEEDED
    assert final.state == expected


@pytest.mark.parametrize("rounds_before_cancel", [1, 3, 6])
def test_cancel_in_the_middle_reports_exactly_what_the_simulator_shows(
    database: Database, rounds_before_cancel: int
) -> None:
    scene = Scene(database)
    executor = scene.executor()
    executor.start(scene.plan.id)
    for _ in range(rounds_before_cancel):
        executor.advance(scene.plan.id)
    assert scene.store.get_plan(scene.plan.id).state == PlanState.ONGOING
    executor.cancel(scene.plan.id)
    final = scene.finish(executor)
    assert final.state == PlanState.CANCELLED
    states = scene.cloud.host_states()
    succeeded = cancelled = 0
    expected_states = {host: "enabled" for host in states}
    for action in final.actions:
        assert action.state in (ActionState.SUCCEEDED, ActionState.CANCELLED), action
        done = action.state == ActionState.SUCCEEDED
        succeeded += done
        cancelled += not done
        if action.type == ActionType.MIGRATE:
            where = scene.sim.locate(action.instance or "")
            assert where == (action.destination if done else action.source), action
        elif done:
            expected_states[str(action.parameters["node"])] = str(action.parameters["state"])
    assert states == expected_states
    assert 0 < succeeded < len(final.actions)
    assert final.message.startswith(f"{succeeded} of {len(final.actions)} actions succeeded")
    assert final.message.count("migrate ") + final.message.count("→") >= cancelled
