"""The tentative state of a consolidation round: which VMs each host holds, the MIPS
they request and are booked for, and each host's summed utilisation history. VMs are
added and removed as a round tries moves; the snapshot itself never changes."""

from __future__ import annotations

import numpy as np

from opendrs.decision.consolidation.snapshot import (
    HISTORY_LENGTH,
    FloatArray,
    IntArray,
    Snapshot,
    power_at,
)


def trimmed_lengths(history: FloatArray) -> IntArray:
    """Per row, the index of the last non-zero value plus one (zero tail trimmed)."""
    nonzero = history != 0.0
    last = HISTORY_LENGTH - np.argmax(nonzero[:, ::-1], axis=1)
    lengths: IntArray = np.where(nonzero.any(axis=1), last, 0).astype(np.int64)
    return lengths


def _one_step_migrations(s: Snapshot) -> bool:
    if not s.vms or not s.hosts:
        return False
    slowest, fastest = float(s.host_migration_mb_s.min()), float(s.host_migration_mb_s.max())
    smallest, largest = float(s.vm_memory_mb.min()), float(s.vm_memory_mb.max())
    if not (slowest > 0.0 and smallest > 0.0 and s.interval > 0.0):
        return False
    # Division rounds monotonically: the largest VM over the slowest link and the
    # smallest over the fastest bound every host's max(largest VM there, moving VM)
    # / its bandwidth / interval.
    return bool((largest / slowest) / s.interval <= 1.0 and (smallest / fastest) / s.interval > 0.0)


class HostMembers:
    """Each host's VMs, in index order, as a list made when the host is first looked
    at: a round looks at a fraction of the hosts, and building every list each round
    cost more than the round's use of them."""

    __slots__ = ("_lists", "_order", "_starts")

    def __init__(self, vm_host: IntArray, hosts: int) -> None:
        # A stable sort keeps each host's VMs in index order, as appending them would.
        self._order: list[int] = np.argsort(vm_host, kind="stable").tolist()
        starts = np.zeros(hosts + 1, dtype=np.int64)
        np.cumsum(np.bincount(vm_host, minlength=hosts), out=starts[1:])
        self._starts: list[int] = starts.tolist()
        self._lists: dict[int, list[int]] = {}

    def __getitem__(self, host: int) -> list[int]:
        found = self._lists.get(host)
        if found is None:
            found = self._order[self._starts[host] : self._starts[host + 1]]
            self._lists[host] = found
        return found

    def __len__(self) -> int:
        return len(self._starts) - 1


class Load:
    """Mutable per-round view. `history` is Σ VM history × VM MIPS / host MIPS."""

    def __init__(self, snapshot: Snapshot) -> None:
        s = snapshot
        self.snapshot = s
        n = s.hosts
        self.members = HostMembers(s.vm_host, n)
        """Each host's VMs in the order they came to it (lists to change in place)."""
        # bincount gives a fresh float64 array: nothing to copy.
        self.requested: FloatArray = np.bincount(
            s.vm_host, weights=s.vm_demand, minlength=n
        ).astype(np.float64, copy=False)
        self.used: FloatArray = s.host_used_mips.astype(np.float64, copy=True)
        self.free: FloatArray = s.host_free_mips.astype(np.float64, copy=True)
        self.memory_free: FloatArray = s.host_memory_free_mb.astype(np.float64, copy=True)
        self.vm_share: FloatArray = s.vm_history * (s.vm_mips / s.host_mips[s.vm_host])[:, None]
        # One bincount over (host, point) cells: each cell sums its VMs in index
        # order, as np.add.at would, at a fraction of the cost.
        cells = (s.vm_host[:, None] * HISTORY_LENGTH + np.arange(HISTORY_LENGTH)).ravel()
        sums = np.bincount(cells, weights=self.vm_share.ravel(), minlength=n * HISTORY_LENGTH)
        self.history: FloatArray = sums.astype(np.float64, copy=False).reshape(n, HISTORY_LENGTH)
        self.vm_trimmed: IntArray = trimmed_lengths(s.vm_history)
        self.history_length: IntArray = np.zeros(n, dtype=np.int64)
        np.maximum.at(self.history_length, s.vm_host, self.vm_trimmed)
        self.where: IntArray = s.vm_host.copy()
        self.max_memory: FloatArray = np.zeros(n)
        np.maximum.at(self.max_memory, s.vm_host, s.vm_memory_mb)
        self.utilisation: FloatArray = s.host_utilisation
        self.power_now: FloatArray = power_at(s.host_power, np.arange(n), self.utilisation)
        self.one_step_migrations = _one_step_migrations(s)
        """Whether moving any VM of the snapshot anywhere takes more than 0 and at most
        one interval (the ceiling of its seconds over the interval is then exactly 1)."""
        # What is read of single VMs and hosts, as Python numbers: the same values,
        # without numpy's cost per scalar.
        self.demands: list[float] = s.vm_demand.tolist()
        self.memories: list[float] = s.vm_memory_mb.tolist()
        self.pe_mips: list[float] = s.host_pe_mips.tolist()
        self._vm_mips: list[float] = s.vm_mips.tolist()
        self._host_mips: list[float] = s.host_mips.tolist()
        self._trimmed: list[int] = self.vm_trimmed.tolist()
        self._rebuilt: dict[tuple[int, ...], tuple[FloatArray, int, float, float]] = {}
        """`_rebuild_history`'s results by (host, its VMs in order)."""
        self._received: set[int] = set()  # hosts given a VM since the snapshot
        self.changes: list[int] = []
        """Hosts a VM was added to or removed from, in order (repeats kept)."""

    def share(self, vm: int, hosts: IntArray) -> FloatArray:
        """The VM's history as a fraction of each of `hosts`' MIPS, (len(hosts), 30)."""
        s = self.snapshot
        factor = s.vm_mips[vm] / s.host_mips[hosts]
        result: FloatArray = s.vm_history[vm][None, :] * factor[:, None]
        return result

    def add(self, vm: int, host: int) -> None:
        demand, memory = self.demands[vm], self.memories[vm]
        alloc = min(demand, self.pe_mips[host])
        self.changes.append(host)
        self._received.add(host)
        self.members[host].append(vm)
        self.requested[host] += demand
        self.used[host] += alloc
        self.free[host] -= alloc
        self.memory_free[host] -= memory
        self.history[host] += self.snapshot.vm_history[vm] * (
            self._vm_mips[vm] / self._host_mips[host]
        )
        # The larger of the two, as max() keeps it (the first unless the second is larger).
        length = self._trimmed[vm]
        if length > self.history_length[host]:
            self.history_length[host] = length
        if memory > self.max_memory[host]:
            self.max_memory[host] = memory
        self.where[vm] = host

    def remove(self, vm: int, host: int) -> None:
        alloc = min(self.demands[vm], self.pe_mips[host])
        self.changes.append(host)
        self.members[host].remove(vm)
        self.requested[host] -= self.demands[vm]
        self.used[host] -= alloc
        self.free[host] += alloc
        self.memory_free[host] += self.memories[vm]
        self._rebuild_history(host)

    def _rebuild_history(self, host: int) -> None:
        # Rebuilt rather than subtracted so an emptied tail is exactly zero again.
        s = self.snapshot
        vms = self.members[host]
        if not vms:
            self.history[host] = 0.0
            self.history_length[host] = 0
            self.requested[host] = 0.0
            self.max_memory[host] = 0.0
            return
        # What is rebuilt depends only on the host and its VMs in order, and a round
        # often returns a host to VMs it had before (a VM placed on it for a host
        # that then cannot be emptied is taken off again): worked out once.
        key = (host, *vms)
        rebuilt = self._rebuilt.get(key)
        if rebuilt is None:
            index = np.array(vms, dtype=np.int64)
            if host in self._received:
                shares = s.vm_history[index] * (s.vm_mips[index] / s.host_mips[host])[:, None]
            else:
                # Every VM is on its snapshot host: its share is already worked out
                # (the same product), as in __init__.
                shares = self.vm_share[index]
            # The ufuncs' reduce is what ndarray.sum/max call, without their wrappers.
            rebuilt = (
                np.add.reduce(shares, axis=0),
                int(np.maximum.reduce(self.vm_trimmed[index])),
                float(np.add.reduce(s.vm_demand[index])),
                float(np.maximum.reduce(s.vm_memory_mb[index])),
            )
            self._rebuilt[key] = rebuilt
        self.history[host] = rebuilt[0]  # copied in: the kept row is never changed
        self.history_length[host] = rebuilt[1]
        self.requested[host] = rebuilt[2]
        self.max_memory[host] = rebuilt[3]

    def movable(self, host: int) -> list[int]:
        migrating = self.snapshot.vm_migrating
        return [vm for vm in self.members[host] if not migrating[vm]]

    def max_migration_seconds(self, hosts: IntArray, extra_vm: int = -1) -> FloatArray:
        """Migration time of each host's largest-memory VM (with `extra_vm` added)."""
        s = self.snapshot
        biggest = self.max_memory[hosts]
        if extra_vm >= 0:
            biggest = np.maximum(biggest, s.vm_memory_mb[extra_vm])
        seconds: FloatArray = biggest / s.host_migration_mb_s[hosts]
        return seconds


def empty_load(snapshot: Snapshot) -> Load:
    """A Load in which no VM is placed yet (`snapshot.vm_host` is ignored)."""
    load = Load(snapshot)
    n = snapshot.hosts
    load.members = HostMembers(np.zeros(0, dtype=np.int64), n)
    load.requested = np.zeros(n)
    load.used = np.zeros(n)
    load.free = snapshot.host_mips.astype(np.float64, copy=True)
    load.memory_free = snapshot.host_memory_free_mb.astype(np.float64, copy=True)
    load.history = np.zeros((n, HISTORY_LENGTH))
    load.history_length = np.zeros(n, dtype=np.int64)
    load.max_memory = np.zeros(n)
    load.where = np.full(snapshot.vms, -1, dtype=np.int64)
    load.utilisation = np.zeros(n)
    load.power_now = snapshot.host_power[:, 0].astype(np.float64, copy=True)
    return load
