"""opendrs' own consolidation policy. Each VM is sized by its recent peak (a forecast
that covers the bursts of the next minutes), hosts are packed best-fit against that
size, a host is relieved only when its demand really threatens its capacity
(hysteresis: trigger high, refill to a lower target), and hosts are emptied only when
every VM on them has stayed put long enough (anti-ping-pong) and the round's migration
budget allows; each move must pay for itself in saved idle power."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from opendrs.decision.consolidation.cluster_view import snapshot_from_cluster
from opendrs.decision.consolidation.policies import GOAL, solution_from_round
from opendrs.decision.consolidation.rounds import Migration, RoundResult
from opendrs.decision.consolidation.snapshot import BoolArray, FloatArray, IntArray, Snapshot
from opendrs.decision.parameters import parse_parameters
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidInput
from opendrs.domain.solution import Solution


@dataclass(frozen=True, slots=True)
class OpendrsParameters:
    window: int = 2
    """History points (newest first) whose peak sizes a VM."""
    margin: float = 0.0
    """Added to the peak, as a fraction of it, for the bursts the window missed."""
    confidence: float = 0.0
    """Extra headroom per host in pooled standard deviations of its VMs (0: off;
    measured worse than peaks on the PlanetLab days)."""
    fill: float = 1.0
    """Hosts are packed until their sized demand reaches this share of capacity."""
    trigger: float = 1.0
    """A host is relieved when its current demand exceeds this share of capacity ..."""
    forecast_trigger: float = 1.2
    """... or its sized demand (the peak forecast) exceeds this share."""
    drain_below: float = 0.7
    """Hosts whose sized demand is under this share are candidates for emptying."""
    cooldown: float = 1200.0
    """Seconds a VM stays where it was last moved before it may move to consolidate."""
    drains_per_round: int = 1000
    initial_share: float = 0.3
    """Share of its nominal CPU a VM is expected to use when it is created."""
    power_changes: bool = False

    def __post_init__(self) -> None:
        checks = (
            ("window", 1 <= self.window <= 30, "within 1..30"),
            ("margin", 0.0 <= self.margin <= 2.0, "within 0..2"),
            ("confidence", 0.0 <= self.confidence <= 10.0, "within 0..10"),
            ("fill", 0.1 <= self.fill <= 1.0, "within 0.1..1"),
            ("trigger", 0.1 <= self.trigger <= 2.0, "within 0.1..2"),
            ("forecast_trigger", 0.1 <= self.forecast_trigger <= 3.0, "within 0.1..3"),
            ("drain_below", 0.0 <= self.drain_below < self.fill, "within 0 and fill"),
            ("cooldown", self.cooldown >= 0.0, "at least 0"),
            ("drains_per_round", self.drains_per_round >= 0, "at least 0"),
            ("initial_share", 0.0 < self.initial_share <= 1.0, "within 0..1"),
        )
        for name, ok, what in checks:
            if not ok:
                raise InvalidInput(
                    f"must be {what}, got {getattr(self, name)!r}", field=f"parameters.{name}"
                )


class _Pack:
    """Sized demand per host and what else limits placement, updated move by move."""

    def __init__(
        self, s: Snapshot, size: FloatArray, variance: FloatArray | None = None, z: float = 0.0
    ) -> None:
        self.s = s
        self.size = size
        self.variance = np.zeros(s.vms) if variance is None else variance
        self.z = z
        self.host = s.vm_host.copy()
        self.sized = np.bincount(s.vm_host, weights=size, minlength=s.hosts)
        self.var_sum = np.bincount(s.vm_host, weights=self.variance, minlength=s.hosts)
        self.free = s.host_free_mips.astype(np.float64, copy=True)
        self.memory = s.host_memory_free_mb.astype(np.float64, copy=True)
        self.memory_total = self.memory + np.bincount(
            s.vm_host, weights=s.vm_memory_mb, minlength=s.hosts
        )
        self.count = np.bincount(s.vm_host, minlength=s.hosts)
        self.on = s.host_on | (self.count > 0)
        self.members: list[list[int]] = [[] for _ in range(s.hosts)]
        for vm, host in enumerate(s.vm_host.tolist()):
            self.members[host].append(vm)

    def level(self, hosts: IntArray | int) -> FloatArray:
        """Forecast demand of hosts: summed means plus z pooled standard deviations
        (peaks of different VMs rarely coincide, so deviations add in quadrature)."""
        result: FloatArray = self.sized[hosts] + self.z * np.sqrt(self.var_sum[hosts])
        return result

    def candidates(self, vm: int, allowed: BoolArray, fill: float) -> IntArray:
        s = self.s
        need = self.size[vm]
        spread = self.z * np.sqrt(self.variance[vm])
        after = self.sized + need + self.z * np.sqrt(self.var_sum + self.variance[vm])
        ok = (
            allowed
            & (after <= s.host_mips * fill)
            & (s.host_pe_mips >= np.minimum(need + spread, s.vm_mips[vm]))
            & (s.host_pe_mips >= s.vm_demand[vm])
            & (self.free >= s.vm_demand[vm])
            & (self.memory >= s.vm_memory_mb[vm])
        )
        found: IntArray = np.flatnonzero(ok)
        return found

    def watts_per_slot(self, vm: int, hosts: IntArray, fill: float) -> FloatArray:
        """Idle watts of each host per VM like `vm` it can hold (CPU or memory bound)."""
        s = self.s
        slots = s.host_mips[hosts] * fill / max(float(self.size[vm]), 1.0)
        memory = s.host_memory_free_mb[hosts]
        if np.isfinite(memory).all():
            total = self.memory_total[hosts]
            slots = np.minimum(slots, total / float(s.vm_memory_mb[vm]))
        watts: FloatArray = s.host_power[hosts, 0] / np.maximum(slots, 1e-9)
        return watts

    def best(self, vm: int, allowed: BoolArray, fill: float) -> int:
        """Among switched-on hosts, the most efficient kind (fewest idle watts per VM
        like this one), best fit within it (least room left, CPU and memory each as a
        share of the host); else the most efficient host to switch on."""
        s = self.s
        hosts = self.candidates(vm, allowed & self.on, fill)
        if hosts.size:
            watts = np.round(self.watts_per_slot(vm, hosts, fill), 3)
            hosts = hosts[watts == watts.min()]
            left = (s.host_mips[hosts] * fill - self.sized[hosts] - self.size[vm]) / s.host_mips[
                hosts
            ]
            memory = self.memory[hosts]
            if np.isfinite(memory).all():
                left = left + (memory - s.vm_memory_mb[vm]) / np.maximum(memory, 1.0)
            return int(hosts[int(np.argmin(left))])
        hosts = self.candidates(vm, allowed & ~self.on, fill)
        if hosts.size:
            return int(hosts[int(np.argmin(self.watts_per_slot(vm, hosts, fill)))])
        return -1

    def move(self, vm: int, destination: int) -> None:
        s = self.s
        source = int(self.host[vm])
        for host, sign in ((source, -1.0), (destination, 1.0)):
            self.sized[host] += sign * self.size[vm]
            self.var_sum[host] = max(self.var_sum[host] + sign * self.variance[vm], 0.0)
            self.free[host] -= sign * min(s.vm_demand[vm], s.host_pe_mips[host])
            self.memory[host] -= sign * s.vm_memory_mb[vm]
            self.count[host] += int(sign)
        self.on[destination] = True
        self.host[vm] = destination
        self.members[source].remove(vm)
        self.members[destination].append(vm)


class OpendrsConsolidation:
    """Forecast-sized best fit with hysteresis, anti-ping-pong and a migration budget."""

    name: ClassVar[str] = "opendrs_consolidation"
    goal: ClassVar[str] = GOAL
    display_name: ClassVar[str] = "opendrs consolidation (forecast, hysteresis, few moves)"
    parameters_type: ClassVar[type[OpendrsParameters]] = OpendrsParameters

    def __init__(self, parameters: OpendrsParameters | None = None) -> None:
        self.parameters = parameters or OpendrsParameters()

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> OpendrsConsolidation:
        return cls(parse_parameters(OpendrsParameters, parameters, source=f"strategy {cls.name}"))

    def execute(self, cluster: Cluster) -> Solution:
        return self.execute_snapshot(snapshot_from_cluster(cluster))

    def sizes(self, s: Snapshot) -> tuple[FloatArray, FloatArray]:
        """Each VM's forecast demand for the next interval: the peak of its recent
        window plus `margin`, never below now nor above its MIPS; and the variance of
        the window, used only when `confidence` > 0 (pooled headroom per host)."""
        p = self.parameters
        window = s.vm_history[:, : p.window] * s.vm_mips[:, None]
        counted = np.clip(s.vm_history_length, 1, p.window)
        mask = np.arange(p.window)[None, :] < counted[:, None]
        peak = np.maximum(np.where(mask, window, 0.0).max(axis=1), s.vm_demand)
        size: FloatArray = np.maximum(np.minimum(peak * (1.0 + p.margin), s.vm_mips), s.vm_demand)
        mean = np.where(mask, window, 0.0).sum(axis=1) / counted
        variance: FloatArray = (
            np.where(mask, (window - mean[:, None]) ** 2, 0.0).sum(axis=1) / counted
        )
        return size, variance

    def initial_placement(self, snapshot: Snapshot) -> IntArray | None:
        """Best fit decreasing on each VM's expected share of its nominal CPU."""
        p = self.parameters
        s = snapshot
        size = s.vm_mips * p.initial_share
        pack = _Pack(s, size)
        pack.host[:] = -1
        pack.sized[:] = 0.0
        pack.count[:] = 0
        pack.on[:] = False
        pack.memory_total = pack.memory.copy()
        pack.free = s.host_free_mips.astype(np.float64, copy=True)
        placed = np.full(s.vms, -1, dtype=np.int64)
        allowed = np.ones(s.hosts, dtype=np.bool_)
        # The scheduler books nominal MIPS while VMs are created.
        memory = s.host_memory_free_mb
        weight = size / float(s.host_mips.max())
        if np.isfinite(memory).all():
            weight = weight + s.vm_memory_mb / float(memory.max())
        for vm in np.argsort(-weight, kind="stable").tolist():
            host = pack.best(vm, allowed & (pack.free >= s.vm_mips[vm]), p.fill)
            if host < 0:
                continue
            placed[vm] = host
            pack.sized[host] += size[vm]
            pack.free[host] -= s.vm_mips[vm]
            pack.memory[host] -= s.vm_memory_mb[vm]
            pack.count[host] += 1
            pack.on[host] = True
        return placed

    def execute_snapshot(self, snapshot: Snapshot) -> Solution:
        p = self.parameters
        s = snapshot
        size, variance = self.sizes(s)
        pack = _Pack(s, size, variance, p.confidence)
        moves: list[Migration] = []
        demand = np.bincount(s.vm_host, weights=s.vm_demand, minlength=s.hosts)
        everything = np.arange(s.hosts)
        overloaded = (demand > s.host_mips * p.trigger) | (
            pack.level(everything) > s.host_mips * p.forecast_trigger
        )
        # A VM whose demand outgrows its host's cores is short whatever the total.
        capped = s.vm_demand > s.host_pe_mips[s.vm_host]
        overloaded[s.vm_host[capped]] = True
        not_target = overloaded.copy()
        for host in np.flatnonzero(overloaded).tolist():
            self._relieve(pack, host, not_target, moves, capped)
        emptied = self._drain(pack, overloaded, moves)
        result = RoundResult(tuple(moves), int(overloaded.sum()), tuple(emptied), 0)
        return solution_from_round(s, result, p.power_changes)

    def _relieve(
        self,
        pack: _Pack,
        host: int,
        not_target: BoolArray,
        moves: list[Migration],
        capped: BoolArray,
    ) -> None:
        """Move the fewest, cheapest VMs until the host's sized demand is at `fill`."""
        p, s = self.parameters, pack.s
        vms = [v for v in pack.members[host] if not s.vm_migrating[v]]
        # Capped VMs first, then the largest sized VMs per MB of memory moved.
        vms.sort(key=lambda v: (not capped[v], -pack.size[v] / s.vm_memory_mb[v]))
        target = s.host_mips[host] * p.fill
        for vm in vms:
            if float(pack.level(host)) <= target and not capped[vm]:
                break
            destination = pack.best(vm, ~not_target, p.fill)
            if destination < 0:
                continue
            pack.move(vm, destination)
            moves.append(Migration(vm, host, destination, "relieve host above capacity"))

    def _drain(self, pack: _Pack, overloaded: BoolArray, moves: list[Migration]) -> list[int]:
        """Empty the least loaded hosts whose VMs all fit elsewhere and have settled."""
        p, s = self.parameters, pack.s
        if p.drains_per_round == 0:
            return []
        settled = np.ones(s.vms, dtype=np.bool_)
        if s.vm_moved_at is not None:
            settled = s.now - s.vm_moved_at >= p.cooldown
        settled &= ~s.vm_migrating
        unsettled_hosts = np.bincount(pack.host[~settled], minlength=s.hosts) > 0
        received = np.zeros(s.hosts, dtype=np.bool_)
        for m in moves:
            received[m.destination] = True
        share = pack.level(np.arange(s.hosts)) / s.host_mips
        reserved = s.host_memory_free_mb + np.bincount(
            s.vm_host, weights=s.vm_memory_mb, minlength=s.hosts
        )
        if np.isfinite(reserved).all():
            # Where memory is reserved it may be the resource that keeps a host busy.
            held = np.bincount(pack.host, weights=s.vm_memory_mb, minlength=s.hosts)
            share = np.maximum(share, held / np.maximum(reserved, 1.0))
        candidates = (pack.count > 0) & ~overloaded & ~received & ~unsettled_hosts
        candidates &= share < p.drain_below
        order = np.flatnonzero(candidates)
        # Least efficient kind of host first (idle watts per MIPS), then fewest VMs (each
        # host switched off should cost as few moves as possible), then least used.
        waste = np.round(s.host_power[:, 0] / s.host_mips, 4)
        order = order[np.lexsort((share[order], pack.count[order], -waste[order]))]
        closed = np.zeros(s.hosts, dtype=np.bool_)
        emptied: list[int] = []
        for host in order.tolist():
            if len(emptied) >= p.drains_per_round:
                break
            if received[host]:
                continue
            closed[host] = True
            vms = sorted(pack.members[host], key=lambda v: -pack.size[v])
            placed: list[tuple[int, int]] = []
            allowed = ~closed & ~overloaded & pack.on
            for vm in vms:
                destination = pack.best(vm, allowed, p.fill)
                if destination < 0 or not pack.on[destination]:
                    break
                pack.move(vm, destination)
                placed.append((vm, destination))
            if len(placed) < len(vms):
                for vm, _ in reversed(placed):
                    pack.move(vm, host)
                continue
            emptied.append(host)
            for vm, destination in placed:
                received[destination] = True
                moves.append(Migration(vm, host, destination, f"empty lightly used host {host}"))
        return emptied
