"""A fake cloud for applier tests: migrations finish after a number of operation()
polls (or of clock seconds), chosen calls can be made to fail, and it records how
many migrations ran at once and how many times each VM was started and moved."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from opendrs.domain.clock import Clock
from opendrs.domain.errors import DriverError
from opendrs.domain.host import HostState
from opendrs.domain.ports import Operation, OperationState


@dataclass
class FakeOperation:
    id: str
    instance: str
    source: str
    destination: str
    live: bool
    started: float
    polls_needed: int
    polls: int = 0
    state: OperationState = OperationState.RUNNING
    message: str = ""


class BasicFakeDriver:
    """A CloudActions without `running_operation`: it cannot say what is in flight."""

    def __init__(
        self,
        placement: Mapping[str, str],
        *,
        polls: int = 2,
        seconds: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        if seconds is not None and clock is None:
            raise ValueError("timing migrations in seconds needs a clock")
        self.placement = dict(placement)
        self.polls = polls
        self.seconds = seconds
        self.clock = clock
        self.polls_for: dict[str, int] = {}
        self.host_states: dict[str, HostState] = {}
        self.host_state_calls: list[tuple[str, HostState]] = []
        self.operations: dict[str, FakeOperation] = {}
        self.fail_start: dict[str, DriverError] = {}
        self.fail_migration: dict[str, str] = {}
        self.fail_host_state: dict[str, Exception] = {}
        self.fail_locate: dict[str, Exception] = {}
        self.started = Counter[str]()
        self.moved = Counter[str]()
        self.peak_total = 0
        self.peak_source = Counter[str]()
        self.peak_destination = Counter[str]()
        self.history: list[tuple[str, ...]] = []
        self._ids = itertools.count(1)

    # CloudActions
    def start_migration(self, instance: str, destination: str, live: bool = True) -> str:
        self._tick()
        if instance in self.fail_start:
            raise self.fail_start[instance]
        if instance not in self.placement:
            raise DriverError(f"instance {instance} not found")
        if any(op.instance == instance for op in self.running()):
            raise DriverError(f"instance {instance} is already migrating")
        source = self.placement[instance]
        if source == destination:
            raise DriverError(f"instance {instance} is already on {destination}")
        op = FakeOperation(
            id=f"op-{next(self._ids)}",
            instance=instance,
            source=source,
            destination=destination,
            live=live,
            started=self.clock.now() if self.clock else 0.0,
            polls_needed=self.polls_for.get(instance, self.polls),
        )
        self.operations[op.id] = op
        self.started[instance] += 1
        self.history.append(("start", instance, source, destination))
        self._record_peaks()
        return op.id

    def operation(self, operation_id: str) -> Operation:
        op = self.operations.get(operation_id)
        if op is None:
            raise DriverError(f"operation {operation_id} not found")
        if op.state == OperationState.RUNNING and self.seconds is None:
            op.polls += 1
            if op.polls >= op.polls_needed:
                self._finish(op)
        self._tick()
        return Operation(op.id, op.state, op.message)

    def locate(self, instance: str) -> str | None:
        self._tick()
        if instance in self.fail_locate:
            raise self.fail_locate[instance]
        return self.placement.get(instance)

    def set_host_state(self, host: str, state: HostState, reason: str | None = None) -> None:
        if host in self.fail_host_state:
            raise self.fail_host_state[host]
        self.host_states[host] = state
        self.host_state_calls.append((host, state))
        self.history.append(("host", host, state.value))

    # what tests look at
    def running(self) -> list[FakeOperation]:
        return [op for op in self.operations.values() if op.state == OperationState.RUNNING]

    def _record_peaks(self) -> None:
        running = self.running()
        self.peak_total = max(self.peak_total, len(running))
        for key, peaks in (("source", self.peak_source), ("destination", self.peak_destination)):
            counts = Counter(getattr(op, key) for op in running)
            for host, n in counts.items():
                peaks[host] = max(peaks[host], n)

    def _finish(self, op: FakeOperation) -> None:
        if op.instance in self.fail_migration:
            op.state = OperationState.FAILED
            op.message = self.fail_migration[op.instance]
            self.history.append(("failed", op.instance))
            return
        op.state = OperationState.SUCCEEDED
        self.placement[op.instance] = op.destination
        self.moved[op.instance] += 1
        self.history.append(("done", op.instance, op.source, op.destination))

    def _tick(self) -> None:
        if self.seconds is None or self.clock is None:
            return
        for op in self.running():
            if self.clock.now() - op.started >= self.seconds:
                self._finish(op)


class FakeDriver(BasicFakeDriver):
    """The fake cloud that can also name a VM's running migration (OperationFinder)."""

    def running_operation(self, instance: str) -> Operation | None:
        self._tick()
        for op in self.running():
            if op.instance == instance:
                return Operation(op.id, op.state, op.message)
        return None
