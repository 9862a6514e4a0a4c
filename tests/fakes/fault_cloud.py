"""The real SimCloud set up for the applier's fault tests: a 10-host cluster and a
30-action drain plan, behind a witness that counts every migration the cloud started
and finished, lets time pass as the applier polls, and can fail a share of calls."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np

from opendrs.cloud.sim.cloud import SimCloud
from opendrs.cloud.sim.power import PowerModel
from opendrs.cloud.sim.specs import HostSpec, VmSpec
from opendrs.cloud.sim.traces import Trace
from opendrs.domain.action import ActionPlan, PlanLimits
from opendrs.domain.clock import ManualClock
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import DriverError
from opendrs.domain.host import HostState
from opendrs.domain.ports import Operation, OperationState
from opendrs.domain.solution import HostChange, Move, Solution
from opendrs.planner import build_plan

HOSTS = [f"h{i}" for i in range(10)]
DRAINED = ("h0", "h1")
# Seconds of simulated time each operation() poll lets pass: a 1 GB VM over 1 Gb/s
# takes 8.2 s, so a migration needs a handful of polls.
POLL_SECONDS = 2.0


def sim_cloud(clock: ManualClock) -> SimCloud:
    """h0..h6 hold 4 VMs each (1 vCPU, 1 GB), h7..h9 are empty; every host takes 8."""
    power = PowerModel([100 + 10 * i for i in range(11)])
    hosts = [
        HostSpec(
            name=name,
            cores=8,
            mips_per_core=1000.0,
            memory_mb=8192,
            disk_gb=100,
            bandwidth_mbps=1000.0,
            power=power,
        )
        for name in HOSTS
    ]
    trace = Trace("flat", np.full(13, 0.2))
    vms = [
        VmSpec(
            name=f"vm-{h}-{k}", vcpus=1, mips_per_vcpu=500.0, memory_mb=1024, disk_gb=5, trace=trace
        )
        for h in HOSTS[:7]
        for k in range(4)
    ]
    placement = {vm.name: vm.name.split("-")[1] for vm in vms}
    return SimCloud(hosts, vms, placement, clock)


def drain_solution() -> Solution:
    """26 moves: h0..h5 drain onto h6..h9 (h6 takes 4, the others 8, 8 and 6), then
    h0 and h1 go to maintenance and are powered off: 30 actions in all."""
    targets = ["h6"] * 4 + ["h7"] * 8 + ["h8"] * 8 + ["h9"] * 6
    moves = []
    sources = [f"vm-{h}-{k}" for h in HOSTS[:6] for k in range(4)] + ["vm-h6-0", "vm-h6-1"]
    # h6's own two VMs go to h9 so h6 has room for 4 arrivals plus its 2 remaining.
    order = sources[:24]
    for name, destination in zip(order, targets[:24], strict=True):
        moves.append(Move(name, name.split("-")[1], destination, reason="drain"))
    moves.append(Move("vm-h6-0", "h6", "h9", reason="spread"))
    moves.append(Move("vm-h6-1", "h6", "h9", reason="spread"))
    changes = []
    for host in DRAINED:
        changes.append(HostChange(host, HostState.MAINTENANCE, "drain"))
    for host in DRAINED:
        changes.append(HostChange(host, HostState.OFF, "save power"))
    return Solution(moves=tuple(moves), host_changes=tuple(changes))


def thirty_action_plan(cloud: SimCloud, audit_id: str = "fault-test") -> ActionPlan:
    cluster = Cluster.of(cloud.list_hosts(), cloud.list_instances())
    plan = build_plan(drain_solution(), cluster, PlanLimits(), audit_id, 0.0)
    assert len(plan.actions) == 30, [a.type for a in plan.actions]
    return plan


class WitnessCloud:
    """CloudActions (and OperationFinder) over a SimCloud. It remembers which
    operation it started for each VM (as Nova's migration records do), counts starts
    per VM, advances the clock on every poll, and with `failure_rate` > 0 fails that
    share of calls: start, locate and host state permanently, polls transiently."""

    def __init__(
        self, sim: SimCloud, clock: ManualClock, *, failure_rate: float = 0.0, seed: int = 0
    ) -> None:
        self.sim = sim
        self.clock = clock
        self.failure_rate = failure_rate
        self.random = random.Random(seed)
        self.started: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.host_calls: list[tuple[str, str]] = []
        self._operation_of: dict[str, str] = {}

    def _maybe_fail(self, call: str, *, transient: bool = False) -> None:
        if self.failure_rate and self.random.random() < self.failure_rate:
            self.injected[call] += 1
            raise DriverError(f"injected failure of {call}", transient=transient)

    def start_migration(self, instance: str, destination: str, live: bool = True) -> str:
        self._maybe_fail("start_migration")
        operation = self.sim.start_migration(instance, destination, live)
        self.started[instance] += 1
        self._operation_of[instance] = operation
        return operation

    def operation(self, operation_id: str) -> Operation:
        self.clock.advance(POLL_SECONDS)
        self._maybe_fail("operation", transient=True)
        return self.sim.operation(operation_id)

    def locate(self, instance: str) -> str | None:
        self._maybe_fail("locate")
        return self.sim.locate(instance)

    def set_host_state(self, host: str, state: HostState, reason: str | None = None) -> None:
        self._maybe_fail("set_host_state")
        self.sim.set_host_state(host, state, reason)
        self.host_calls.append((host, state.value))

    def running_operation(self, instance: str) -> Operation | None:
        operation = self._operation_of.get(instance)
        if operation is None:
            return None
        found = self.sim.operation(operation)
        return found if found.state == OperationState.RUNNING else None

    def now(self) -> float:
        return self.clock.now()

    def host_states(self) -> dict[str, str]:
        return {h.name: h.state.value for h in self.sim.list_hosts()}
