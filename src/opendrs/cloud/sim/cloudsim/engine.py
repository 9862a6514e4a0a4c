"""The simulated data centre of the `cloudsim` and `realistic` profiles, vectorised over
hosts and VMs: demand from traces, CPU sharing with PE caps and proportional scale-down,
live migrations with CloudSim's 90 %/10 % accounting, and the metrics (energy, SLATAH,
PDM, overall SLA violation, host shutdowns) integrated between state samples."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from opendrs.cloud.sim.cloudsim.hardware import (
    HOST_RAM_MB,
    MIGRATION_MB_S,
    Fleet,
    FloatArray,
    IntArray,
)
from opendrs.decision.consolidation.snapshot import HISTORY_LENGTH, Snapshot, power_at
from opendrs.domain.errors import DriverError, InvalidInput

STEP_SECONDS = 300.0
OFFSET = 0.1  # CloudSim's updates happen at 300k + 0.1 s


def _sums(index: IntArray, weights: FloatArray, size: int) -> FloatArray:
    result: FloatArray = np.bincount(index, weights=weights, minlength=size).astype(
        np.float64, copy=False
    )
    return result


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    delete_idle_vms: bool  # CloudSim removes a VM whose demand is exactly 0
    reserve_memory: bool  # after the first decision CloudSim reserves none
    explicit_power: bool  # hosts are on/off; on hosts cost idle power, booting costs
    boot_seconds: float = 0.0
    boot_watts_share: float = 1.0  # of peak power while booting


CLOUDSIM = Profile("cloudsim", delete_idle_vms=True, reserve_memory=False, explicit_power=False)
REALISTIC = Profile(
    "realistic", delete_idle_vms=False, reserve_memory=True, explicit_power=True, boot_seconds=120.0
)
PROFILES = {p.name: p for p in (CLOUDSIM, REALISTIC)}


@dataclass
class _Sample:
    """State between two instants: what hosts and VMs were allocated and asked for."""

    time: float
    utilisation: FloatArray  # host, 0..1
    host_alloc: FloatArray
    host_requested: FloatArray
    vm_alloc: FloatArray
    vm_requested: FloatArray
    vm_in_migration: FloatArray  # 1.0 where the VM's record says "in migration"
    on: FloatArray  # 1.0 for hosts that draw power (explicit power model)
    boot_end: FloatArray  # when a booting host is up (0: not booting)
    watts: FloatArray | None = None
    """Each host's power at `utilisation`, worked out once when first accounted (a
    sample ends one interval and starts the next)."""


@dataclass
class Totals:
    energy_j: float = 0.0
    active_seconds: float = 0.0
    violation_seconds: float = 0.0
    requested_mi: float = 0.0
    allocated_mi: float = 0.0
    migration_loss_mi: float = 0.0
    migrations: int = 0
    shutdowns: int = 0
    vms_deleted: int = 0
    boots: int = 0
    series: list[tuple[float, int, float, float]] = field(default_factory=list)
    """(time, active hosts, cumulative kWh, hosts short of MIPS) at each step."""


class DataCentre:
    def __init__(self, fleet: Fleet, traces: FloatArray, profile: Profile) -> None:
        if traces.shape[0] != fleet.vms:
            raise InvalidInput(f"{traces.shape[0]} traces for {fleet.vms} VMs", source="simulation")
        self.fleet = fleet
        self.traces = traces
        # One row per sample time: reading a time is then a contiguous row.
        self._by_time = np.ascontiguousarray(traces.T)
        self.profile = profile
        n, m = fleet.hosts, fleet.vms
        self.now = 0.0
        self.vm_host: IntArray = np.full(m, -1, dtype=np.int64)
        self.vm_alive = np.ones(m, dtype=np.bool_)
        self.vm_created = m
        self.vm_arrival: IntArray = np.arange(m, dtype=np.int64)
        self._arrivals = m
        self.vm_dest: IntArray = np.full(m, -1, dtype=np.int64)
        self.vm_end = np.full(m, np.inf)
        self.vm_start = np.full(m, np.inf)  # when the copy begins (after a boot)
        self.vm_moved_at = np.full(m, -np.inf)
        self.history = np.zeros((m, HISTORY_LENGTH))
        self.history_length: IntArray = np.zeros(m, dtype=np.int64)
        self.demand = fleet.vm_mips.copy()
        self.host_on = np.zeros(n, dtype=np.bool_)
        self.host_boot_end = np.zeros(n)
        self.totals = Totals()
        self._last: _Sample | None = None
        self._last_active = np.ones(n, dtype=np.bool_)
        self._vm_index = {name: i for i, name in enumerate(fleet.vm_names)}
        self._host_index = {name: i for i, name in enumerate(fleet.host_names)}
        self._free_mips = fleet.host_mips.copy()
        # Per-run constants of the accounting, made once rather than at every sample.
        self._host_ids: IntArray = np.arange(n)
        self._boot_watts = fleet.host_power[:, -1] * profile.boot_watts_share

    # --- placement at t = 0 -------------------------------------------------

    def place(self, hosts: IntArray) -> None:
        """Put every VM on its host (or leave it out with -1) before the run starts."""
        self.vm_host = hosts.astype(np.int64).copy()
        unplaced = self.vm_host < 0
        self.vm_alive &= ~unplaced
        self.vm_created = int(self.vm_alive.sum())
        self.host_on[np.unique(self.vm_host[self.vm_alive])] = True

    # --- time -----------------------------------------------------------------

    def demand_at(self, t: float) -> FloatArray:
        position = t / STEP_SECONDS
        last = self._by_time.shape[0] - 1
        low = min(int(np.floor(position)), last)
        high = min(int(np.ceil(position)), last)
        fraction = position - low if high > low else 0.0
        rows = self._by_time
        u = rows[low] + (rows[high] - rows[low]) * fraction
        result: FloatArray = u * self.fleet.vm_mips
        return result

    def step(self, k: int) -> None:
        """The update at 300k + 0.1 s: sample, account, drop idle VMs, record history."""
        t = k * STEP_SECONDS + OFFSET
        self._update(t)
        if self.profile.delete_idle_vms:
            idle = self.vm_alive & (self.vm_dest < 0) & (self.demand == 0.0)
            if idle.any():
                self.vm_alive &= ~idle
                self.totals.vms_deleted += int(idle.sum())
        alive = self.vm_alive
        self.history[alive, 1:] = self.history[alive, :-1]
        self.history[alive, 0] = self.demand[alive] / self.fleet.vm_mips[alive]
        self.history_length[alive] = np.minimum(self.history_length[alive] + 1, HISTORY_LENGTH)
        self._finish_boots(t)
        last = self._last
        if last is not None:
            hours = self.totals.energy_j / 3.6e6
            running = last.host_alloc > 0
            short = np.count_nonzero(running & (last.host_alloc < last.host_requested))
            self.totals.series.append((t, int(np.count_nonzero(running)), hours, float(short)))

    def complete_migrations(self, until: float) -> None:
        """Run every migration completion up to `until`, in time order."""
        while True:
            pending = self.vm_end[self.vm_dest >= 0]
            if pending.size == 0:
                return
            t = float(pending.min())
            if t > until:
                return
            self._update(t)
            done = np.flatnonzero((self.vm_dest >= 0) & (self.vm_end == t))
            self.vm_host[done] = self.vm_dest[done]
            self.vm_moved_at[done] = t
            self.vm_dest[done] = -1
            self.vm_end[done] = np.inf
            self.vm_start[done] = np.inf
            # Arrival order: by VM index among those landing at the same instant.
            self.vm_arrival[done] = np.arange(self._arrivals, self._arrivals + done.size)
            self._arrivals += int(done.size)
            self._record(t)

    def record_migration_starts(self) -> None:
        """Re-record the state at the current instant once migrations have started."""
        self._record(self.now, starting=True)

    def _finish_boots(self, t: float) -> None:
        booted = (self.host_boot_end > 0) & (self.host_boot_end <= t)
        self.host_boot_end[booted] = 0.0

    def _update(self, t: float) -> None:
        self.now = t
        self.demand = self.demand_at(t)
        self._record(t)

    # --- state and accounting --------------------------------------------------

    def _measure(self, starting: bool) -> _Sample:
        fleet = self.fleet
        n = fleet.hosts
        alive = self.vm_alive.nonzero()[0]
        host = self.vm_host[alive]
        dest = self.vm_dest[alive]
        moving = dest >= 0
        demand = self.demand[alive]
        capped = np.minimum(demand, fleet.host_pe_mips[host])
        in_vm = alive[moving]
        in_host = dest[moving]
        in_demand = demand[moving]  # self.demand[in_vm]
        in_capped = np.minimum(in_demand, fleet.host_pe_mips[in_host]) * 0.1
        total = np.bincount(host, weights=capped, minlength=n) + np.bincount(
            in_host, weights=in_capped, minlength=n
        )
        over = total > fleet.host_mips
        factor = np.where(over, fleet.host_mips / np.where(total > 0, total, 1.0), 1.0)
        scaled = capped * factor[host]
        scaled = np.where(moving, scaled * 0.9, scaled)
        scaled = np.where(over[host], np.floor(scaled), scaled)
        in_alloc = in_capped * factor[in_host]
        in_alloc = np.where(over[in_host], np.floor(in_alloc), in_alloc)
        counted = np.where(moving, scaled / 0.9, scaled)
        host_alloc = _sums(host, counted, n) + _sums(in_host, in_alloc, n)
        host_requested = _sums(host, demand, n) + _sums(in_host, in_demand, n)
        m = fleet.vms
        vm_alloc = np.zeros(m)
        vm_alloc[alive] = scaled
        vm_flag = np.zeros(m)
        vm_flag[alive] = moving  # stored as 1.0 and 0.0
        if not starting and in_vm.size:
            # At other instants the host updated last (the higher index) writes the record.
            dest_last = in_host > host[moving]
            vm_alloc[in_vm] = np.where(dest_last, in_alloc, scaled[moving])
            vm_flag[in_vm] = np.where(dest_last, 0.0, 1.0)
        vm_requested = np.zeros(m)
        vm_requested[alive] = demand
        self._free_mips = np.where(over, 0.0, fleet.host_mips - total)
        return _Sample(
            time=self.now,
            utilisation=host_alloc / fleet.host_mips,
            host_alloc=host_alloc,
            host_requested=host_requested,
            vm_alloc=vm_alloc,
            vm_requested=vm_requested,
            vm_in_migration=vm_flag,
            on=self.host_on.astype(np.float64),
            boot_end=np.where(self.host_boot_end > self.now, self.host_boot_end, 0.0),
        )

    def _record(self, t: float, *, starting: bool = False) -> None:
        sample = self._measure(starting)
        last = self._last
        if last is not None and t > last.time:
            self._account(last, sample, t - last.time)
            self._close(last)
        # A sample taken at the same instant replaces the previous one.
        self._last = sample

    def _close(self, sample: _Sample) -> None:
        """`sample` is the last word on its instant: count hosts that went idle."""
        active = sample.host_alloc > 0.0
        self.totals.shutdowns += int(np.count_nonzero(self._last_active & ~active))
        self._last_active = active

    def finish(self) -> None:
        if self._last is not None:
            self._close(self._last)

    def _account(self, a: _Sample, b: _Sample, dt: float) -> None:
        totals = self.totals
        p_a, p_b = self._watts(a), self._watts(b)
        if self.profile.explicit_power:
            # A booting host draws (a share of) its peak until it is up, then runs.
            booting = np.clip(a.boot_end - a.time, 0.0, dt)
            joules = a.on * ((p_a + p_b) / 2.0 * (dt - booting) + self._boot_watts * booting)
            totals.energy_j += float(joules.sum())
        else:
            watts = np.where(a.utilisation > 0.0, (p_a + p_b) / 2.0, 0.0)
            totals.energy_j += float(watts.sum()) * dt
        # Counts of hosts as whole numbers, as a sum of the flags would give them.
        active = a.host_alloc > 0.0
        totals.active_seconds += float(np.count_nonzero(active)) * dt
        short = active & (a.host_alloc < a.host_requested)
        totals.violation_seconds += float(np.count_nonzero(short)) * dt
        totals.requested_mi += float(a.vm_requested.sum()) * dt
        totals.allocated_mi += float(a.vm_alloc.sum()) * dt
        loss = np.maximum(a.vm_requested - a.vm_alloc, 0.0) * a.vm_in_migration
        totals.migration_loss_mi += float(loss.sum()) * dt

    def _watts(self, sample: _Sample) -> FloatArray:
        if sample.watts is None:
            sample.watts = power_at(self.fleet.host_power, self._host_ids, sample.utilisation)
        return sample.watts

    # --- what the strategies see ------------------------------------------------

    def snapshot(self, step: int) -> Snapshot:
        fleet = self.fleet
        alive = np.flatnonzero(self.vm_alive)
        order = alive[np.argsort(self.vm_arrival[alive], kind="stable")]
        host = self.vm_host[order]
        last = self._last
        used = last.host_alloc if last is not None else np.zeros(fleet.hosts)
        if self.profile.reserve_memory:
            memory = self._memory_free()
        else:
            memory = np.full(fleet.hosts, np.inf)
        on = self.host_on.copy() if self.profile.explicit_power else used > 0.0
        return Snapshot(
            host_names=fleet.host_names,
            host_mips=fleet.host_mips,
            host_pe_mips=fleet.host_pe_mips,
            host_power=fleet.host_power,
            host_used_mips=used.copy(),
            host_free_mips=self._free_mips.copy(),
            host_memory_free_mb=memory,
            host_on=on,
            host_migration_mb_s=np.full(fleet.hosts, MIGRATION_MB_S),
            vm_names=tuple(map(fleet.vm_names.__getitem__, order.tolist())),
            vm_host=host,
            vm_mips=fleet.vm_mips[order],
            vm_memory_mb=fleet.vm_memory_mb[order],
            vm_demand=self.demand[order],
            vm_history=self.history[order],
            vm_history_length=self.history_length[order],
            vm_migrating=self.vm_dest[order] >= 0,
            interval=STEP_SECONDS,
            now=self.now,
            step=step,
            vm_moved_at=self.vm_moved_at[order],
        )

    def _memory_free(self) -> FloatArray:
        alive = self.vm_alive
        n = self.fleet.hosts
        ram = self.fleet.vm_memory_mb
        held = np.bincount(self.vm_host[alive], weights=ram[alive], minlength=n)
        moving = alive & (self.vm_dest >= 0)
        held += np.bincount(self.vm_dest[moving], weights=ram[moving], minlength=n)
        free: FloatArray = (HOST_RAM_MB - held).astype(np.float64)
        return free

    def vm_index(self, name: str) -> int:
        try:
            return self._vm_index[name]
        except KeyError:
            raise DriverError(f"no such instance {name!r}") from None

    def host_index(self, name: str) -> int:
        try:
            return self._host_index[name]
        except KeyError:
            raise DriverError(f"no such host {name!r}") from None

    def begin_migration(self, vm: int, destination: int) -> None:
        if not self.vm_alive[vm]:
            raise DriverError(f"{self.fleet.vm_names[vm]} is gone")
        if self.vm_dest[vm] >= 0:
            raise DriverError(f"{self.fleet.vm_names[vm]} is already migrating")
        if self.vm_host[vm] == destination:
            raise DriverError(f"{self.fleet.vm_names[vm]} is already on that host")
        if self.profile.explicit_power and not self.host_on[destination]:
            raise DriverError(f"{self.fleet.host_names[destination]} is switched off")
        start = max(self.now, float(self.host_boot_end[destination]))
        self.vm_dest[vm] = destination
        self.vm_start[vm] = start
        self.vm_end[vm] = start + self.fleet.vm_memory_mb[vm] / MIGRATION_MB_S
        self.totals.migrations += 1

    def switch(self, host: int, on: bool) -> None:
        if not self.profile.explicit_power:
            return
        if on and not self.host_on[host]:
            self.host_on[host] = True
            self.host_boot_end[host] = self.now + self.profile.boot_seconds
            self.totals.boots += 1
            self._record(self.now)
        elif not on and self.host_on[host]:
            holds = self.vm_alive & ((self.vm_host == host) | (self.vm_dest == host))
            if holds.any():
                raise DriverError(f"{self.fleet.host_names[host]} still holds VMs")
            self.host_on[host] = False
            self.host_boot_end[host] = 0.0
            self._record(self.now)
