"""Power-aware best fit decreasing (PABFD): each VM goes to the host whose power rises
least, among hosts that can take its MIPS (and memory, where reserved) and that the
overload detector would not flag with it; ties go to the lowest host index. `Placer`
gives the same answers through a round for less, trying one idle host of each kind."""

from __future__ import annotations

import numpy as np

from opendrs.decision.consolidation.detectors import Detector, Threshold
from opendrs.decision.consolidation.load import Load, empty_load
from opendrs.decision.consolidation.snapshot import (
    BoolArray,
    FloatArray,
    IntArray,
    Snapshot,
    power_at,
)


def suitable(load: Load, vm: int, excluded: BoolArray) -> IntArray:
    """Hosts not excluded with room for `vm`'s current demand (and memory)."""
    s = load.snapshot
    demand = s.vm_demand[vm]
    fits = (
        ~excluded
        & (s.host_pe_mips >= demand)
        & (load.free >= demand)
        & (load.memory_free >= s.vm_memory_mb[vm])
    )
    hosts: IntArray = np.flatnonzero(fits)
    return hosts


def find_host(load: Load, vm: int, excluded: BoolArray, detector: Detector) -> int:
    """The PABFD destination of `vm`, or -1."""
    hosts = suitable(load, vm, excluded)
    if hosts.size == 0:
        return -1
    return _least_increase(load, vm, hosts, detector)


def _least_increase(load: Load, vm: int, hosts: IntArray, detector: Detector) -> int:
    """Of `hosts` (suitable, in index order), the first whose power rises least with
    `vm`, leaving out busy hosts the detector would flag with it; -1 if none is left."""
    s = load.snapshot
    used = load.used[hosts]
    busy = used != 0.0
    busy_hosts = hosts[busy]
    if busy_hosts.size:
        flagged = detector.overloaded_with(load, busy_hosts, vm)
        if flagged.any():
            keep = np.ones(hosts.size, dtype=np.bool_)
            keep[busy] = ~flagged
            hosts = hosts[keep]
            if hosts.size == 0:
                return -1
            used = used[keep]
    after = (used + s.vm_demand[vm]) / s.host_mips[hosts]
    increase = power_at(s.host_power, hosts, after) - load.power_now[hosts]
    return int(hosts[int(np.argmin(increase))])


class Placer:
    """`find_host` for one round whose exclusions only ever grow, over fewer hosts:
    idle hosts alike in everything PABFD reads (PE and host MIPS, power curve,
    current watts, free MIPS and memory) are one class, and only its lowest-indexed
    member that is not excluded is tried; the others could only tie with it at a
    higher index. Idle hosts are never passed to the detector, so it sees exactly the
    busy hosts `find_host` would pass it, in the same order: the answer is the same."""

    def __init__(self, load: Load, detector: Detector, excluded: BoolArray) -> None:
        self.load = load
        self.detector = detector
        self._excluded = excluded.copy()
        self._seen = len(load.changes)
        self._classed = load.used == 0.0
        s = load.snapshot
        idle = np.flatnonzero(self._classed)
        self._classed_hosts = set(idle.tolist())
        keys = np.column_stack(
            [
                s.host_pe_mips[idle],
                s.host_mips[idle],
                s.host_power[idle],
                load.power_now[idle],
                load.free[idle],
                load.memory_free[idle],
            ]
        )
        self._classes = _alike(idle, keys)
        self._first = [0] * len(self._classes)
        # Unreserved memory (+inf everywhere, finite VMs) stays +inf and always fits.
        self._memory_bounded = not (
            bool(np.isposinf(load.memory_free).all()) and bool(np.isfinite(s.vm_memory_mb).all())
        )
        # With finite watts and demands every increase is finite, so masking unusable
        # hosts with +inf leaves argmin (and a stable sort) to the usable ones.
        # Finite free MIPS too, so a host's room min(free, PE MIPS) can be kept up to
        # date in scalars (it stays finite: only finite demands are added or taken).
        self._finite = bool(
            np.isfinite(s.host_power).all()
            and np.isfinite(load.power_now).all()
            and np.isfinite(load.used).all()
            and np.isfinite(load.free).all()
            and np.isfinite(s.host_pe_mips).all()
            and np.isfinite(s.vm_demand).all()
        )
        # Detectors that judge each host alone may be asked about any set of hosts:
        # a few at a time when that is dear (MAD, IQR), all at once when cheap (THR).
        self._one_by_one = bool(getattr(detector, "judges_hosts_one_by_one", False))
        self._threshold = detector if isinstance(detector, Threshold) else None
        self._demand = load.demands
        self._memory = load.memories
        self._watts = s.host_power.ravel()
        rises = np.zeros_like(self._watts)
        rises[:-1] = self._watts[1:] - self._watts[:-1]
        self._rises: FloatArray = rises
        self._pe_list = load.pe_mips
        # The candidates and, kept up to date as VMs come and go, what `find` reads
        # of them: each is what indexing the load's arrays with them would give.
        self._hosts: IntArray = np.zeros(0, dtype=np.int64)
        self._position: dict[int, int] = {}
        self._mips: FloatArray = np.zeros(0)
        self._now: FloatArray = np.zeros(0)
        self._rows: IntArray = np.zeros(0, dtype=np.int64)
        self._used: FloatArray = np.zeros(0)
        self._room: FloatArray = np.zeros(0)
        self._memory_free: FloatArray = np.zeros(0)
        self._busy: BoolArray = np.zeros(0, dtype=np.bool_)
        self._dirty = True

    def exclude(self, hosts: BoolArray) -> None:
        """Exclude `hosts` (a mask) as well, from now on."""
        self._excluded |= hosts
        self._dirty = True

    def exclude_host(self, host: int) -> None:
        if self._excluded[host]:
            return
        self._excluded[host] = True
        if self._dirty:
            return
        i = self._position.get(host)
        if i is None:
            return  # not tried now (a later member of a class): skipped when it would be
        if self._classed[host]:
            self._dirty = True  # the next member of its class is tried instead
        else:
            # It stays among the candidates, with no room: never usable, and never
            # asked about where only usable hosts are (an unusable host's verdict
            # is never read where all candidates are).
            self._room[i] = -np.inf

    def _candidates(self) -> IntArray:
        load = self.load
        changes = load.changes
        if self._seen < len(changes):
            # A host a VM joined or left is no longer like its class: tried on its own.
            position = self._position
            for host in changes[self._seen :]:
                if host in self._classed_hosts:
                    self._classed_hosts.discard(host)
                    self._classed[host] = False
                    self._dirty = True
                elif not self._dirty and host in position:
                    i = position[host]
                    used = float(load.used[host])
                    self._used[i] = used
                    self._busy[i] = used != 0.0
                    # Both finite: the minimum np.minimum would give.
                    room = min(float(load.free[host]), self._pe_list[host])
                    self._room[i] = -np.inf if self._excluded[host] else room
                    self._memory_free[i] = load.memory_free[host]
            self._seen = len(changes)
        if self._dirty:
            self._dirty = False
            excluded, classed = self._excluded, self._classed
            chosen = ~classed & ~excluded
            for c, members in enumerate(self._classes):
                # Members only ever leave a class or become excluded: the first
                # usable one never moves back.
                i = self._first[c]
                while i < len(members) and (excluded[members[i]] or not classed[members[i]]):
                    i += 1
                self._first[c] = i
                if i < len(members):
                    chosen[members[i]] = True
            hosts: IntArray = chosen.nonzero()[0]
            s = load.snapshot
            self._hosts = hosts
            self._position = dict(zip(hosts.tolist(), range(hosts.size), strict=True))
            self._mips = s.host_mips.take(hosts)
            self._now = load.power_now.take(hosts)
            self._rows = hosts * 11
            self._used = load.used.take(hosts)
            self._busy = self._used != 0.0
            self._room = np.minimum(load.free.take(hosts), s.host_pe_mips.take(hosts))
            self._memory_free = load.memory_free.take(hosts)
        return self._hosts

    def find(self, vm: int) -> int:
        """`find_host(load, vm, excluded, detector)` with the exclusions so far."""
        if not self._finite:
            return find_host(self.load, vm, self._excluded, self.detector)
        load = self.load
        candidates = self._candidates()
        if not candidates.size:
            return -1
        demand = self._demand[vm]
        used = self._used
        # Free MIPS and PE MIPS both at least the demand, in one comparison.
        ok = self._room >= demand
        if self._memory_bounded:
            ok &= self._memory_free >= self._memory[vm]
        # power_at over every candidate, its two lookups folded into one table of
        # rises (the same differences, so the same watts).
        u = np.minimum(np.maximum((used + demand) / self._mips, 0.0), 1.0) * 10.0
        seg = np.minimum(u.astype(np.int64), 9)
        at = self._rows + seg
        watts = self._watts.take(at) + self._rises.take(at) * (u - seg)
        busy = self._busy
        if self._one_by_one:
            increase = np.where(ok, watts - self._now, np.inf)
            return self._cheapest_unflagged(vm, candidates, increase, busy, ok)
        # The detector can only take busy hosts away. So the cheapest usable host
        # stands if it is idle, or if the detector lets it be; only when it flags it
        # is the search run again without what it flagged. (Usable hosts have finite
        # increases: argmin lands on one if there is any.)
        extra = watts - self._now
        increase = np.where(ok, extra, np.inf)
        best = int(increase.argmin())
        if not ok[best]:
            return -1
        if not busy[best]:
            return int(candidates[best])
        if self._threshold is not None:
            if not self._threshold.host_overloaded_with(load, int(candidates[best]), vm):
                return int(candidates[best])
            # A threshold costs less asked about every candidate than about a subset.
            flagged = self.detector.overloaded_with(load, candidates, vm)
            flagged &= busy
            ok &= ~flagged
        else:
            # Exactly the usable busy hosts are asked, as `find_host` asks them (a
            # regression's rounding may depend on which rows it is given).
            asked = (ok & busy).nonzero()[0]
            flagged = self.detector.overloaded_with(load, candidates[asked], vm)
            ok[asked[flagged]] = False
        if ok[best]:
            return int(candidates[best])
        increase = np.where(ok, extra, np.inf)
        best = int(increase.argmin())
        return int(candidates[best]) if ok[best] else -1

    def _cheapest_unflagged(
        self, vm: int, candidates: IntArray, increase: FloatArray, busy: BoolArray, ok: BoolArray
    ) -> int:
        """For a detector that judges each host on its own: walk the usable hosts
        from the least increase (ties: lowest index, as argmin) and ask the detector
        about a few busy ones at a time; an idle host is never flagged, so the walk
        ends at the first one."""
        # Usable hosts have finite increases, the others +inf: argmin is the
        # cheapest usable host if there is one, and it stands if it is idle: no
        # ranking needed.
        best = int(increase.argmin())
        if not ok[best]:
            return -1
        if not busy[best]:
            return int(candidates[best])
        usable = int(np.count_nonzero(ok))
        ranked = np.argsort(increase, kind="stable")[:usable]  # ranked[0] is best
        busy_ranked = busy[ranked]
        idle_at = int(busy_ranked.argmin())
        end = idle_at if not busy_ranked[idle_at] else usable
        start, size = 0, 4
        while start < end:
            batch = ranked[start : min(end, start + size)]
            flagged = self.detector.overloaded_with(self.load, candidates[batch], vm)
            clear = int(flagged.argmin())
            if not flagged[clear]:
                return int(candidates[batch[clear]])
            start += size
            size *= 4
        return int(candidates[ranked[end]]) if end < usable else -1


def _alike(hosts: IntArray, keys: FloatArray) -> list[list[int]]:
    """`hosts` grouped by equal rows of `keys`, bit for bit (so -0.0 is not 0.0 and
    a NaN is its own twin), each group in index order. Idle hosts come in a few kinds:
    one comparison per kind."""
    bits = np.ascontiguousarray(keys).view(np.int64)
    groups: list[list[int]] = []
    left = np.arange(len(hosts))
    while left.size:
        same = (bits[left] == bits[left[0]]).all(axis=1)
        groups.append(hosts[left[same]].tolist())
        left = left[~same]
    return groups


def place_all(snapshot: Snapshot, detector: Detector) -> IntArray:
    """Initial placement of every VM of `snapshot`, in index order, by PABFD on empty
    hosts (their current placement is ignored); -1 for a VM that fits nowhere."""
    load = empty_load(snapshot)
    placer = Placer(load, detector, np.zeros(snapshot.hosts, dtype=np.bool_))
    hosts = np.full(snapshot.vms, -1, dtype=np.int64)
    for vm in range(snapshot.vms):
        host = placer.find(vm)
        if host >= 0:
            load.add(vm, host)
            hosts[vm] = host
    return hosts
