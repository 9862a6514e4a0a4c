"""Host overload detectors of Beloglazov & Buyya as CloudSim 3.0.3 computes them:
static threshold (THR), median absolute deviation (MAD), interquartile range (IQR) and
local regression (LR; LRR is the same, CloudSim never applies its weights). MAD, IQR
and LR fall back to THR 0.7 while a host's history is too short."""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from opendrs.decision.consolidation.load import Load
from opendrs.decision.consolidation.snapshot import HISTORY_LENGTH, BoolArray, FloatArray, IntArray

FALLBACK_THRESHOLD = 0.7
ROBUST_MIN_POINTS = 12
REGRESSION_POINTS = 10


class Detector(Protocol):
    def overloaded(self, load: Load, hosts: IntArray) -> BoolArray:
        """Whether each of `hosts` is overloaded in the tentative state."""
        ...

    def overloaded_with(self, load: Load, hosts: IntArray, vm: int) -> BoolArray:
        """Whether each of `hosts` would be overloaded with `vm` added."""
        ...


# Hosts are index arrays: `take` reads what indexing with them reads, for less.


def _utilisation(load: Load, hosts: IntArray, vm: int = -1) -> FloatArray:
    requested = load.requested.take(hosts)
    if vm >= 0:
        requested = requested + load.snapshot.vm_demand[vm]
    u: FloatArray = requested / load.snapshot.host_mips.take(hosts)
    return u


def _history(load: Load, hosts: IntArray, vm: int) -> tuple[FloatArray, IntArray]:
    if vm < 0:
        return load.history.take(hosts, axis=0), load.history_length.take(hosts)
    rows: FloatArray = load.history.take(hosts, axis=0) + load.share(vm, hosts)
    lengths: IntArray = np.maximum(load.history_length.take(hosts), load.vm_trimmed[vm])
    return rows, lengths


class Threshold:
    """Overloaded when requested MIPS / host MIPS > threshold."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def overloaded(self, load: Load, hosts: IntArray) -> BoolArray:
        flags: BoolArray = _utilisation(load, hosts) > self.threshold
        return flags

    def overloaded_with(self, load: Load, hosts: IntArray, vm: int) -> BoolArray:
        flags: BoolArray = _utilisation(load, hosts, vm) > self.threshold
        return flags

    def host_overloaded_with(self, load: Load, host: int, vm: int) -> bool:
        """`overloaded_with` for one host, in scalars: the same sum, quotient and
        comparison, so the same verdict (each host is judged on its own)."""
        s = load.snapshot
        return bool((load.requested[host] + s.vm_demand[vm]) / s.host_mips[host] > self.threshold)


class _Robust:
    """MAD and IQR: threshold 1 − s·spread of the host's (trimmed) history."""

    judges_hosts_one_by_one = True
    """Each host's verdict depends on that host alone (row-wise sorts and medians),
    never on which other hosts are asked with it, so a placer may ask a few at a time."""

    def __init__(self, safety: float) -> None:
        self.safety = safety
        self.fallback = Threshold(FALLBACK_THRESHOLD)

    def spread(self, rows: FloatArray, lengths: IntArray) -> FloatArray:
        raise NotImplementedError

    def full_spread(self, rows: FloatArray) -> FloatArray:
        """`spread` of rows that all hold HISTORY_LENGTH points."""
        raise NotImplementedError

    def _decide(self, u: FloatArray, rows: FloatArray, lengths: IntArray) -> BoolArray:
        if _all_full(lengths):
            # Every row full: `spread` is `full_spread` and no host falls back, so
            # this is what the general case below gives, without its masks.
            full: BoolArray = u > 1.0 - self.safety * self.full_spread(rows)
            return full
        enough = lengths >= ROBUST_MIN_POINTS
        flags: BoolArray = u > FALLBACK_THRESHOLD
        if enough.size and enough[enough.argmax()]:  # enough.any(), for less
            threshold = 1.0 - self.safety * self.spread(rows[enough], lengths[enough])
            flags[enough] = u[enough] > threshold
        return flags

    def overloaded(self, load: Load, hosts: IntArray) -> BoolArray:
        rows, lengths = _history(load, hosts, -1)
        return self._decide(_utilisation(load, hosts), rows, lengths)

    def overloaded_with(self, load: Load, hosts: IntArray, vm: int) -> BoolArray:
        if vm >= 0 and hosts.size and load.vm_trimmed[vm] >= HISTORY_LENGTH:
            # With the VM's full history every row is full (its length is the
            # larger of the two), known without working the lengths out. The rows
            # and utilisations are `_history`'s and `_utilisation`'s, the same
            # operations on the same values, each host's MIPS read once.
            s = load.snapshot
            mips = s.host_mips.take(hosts)
            share = s.vm_history[vm][None, :] * (s.vm_mips[vm] / mips)[:, None]
            rows = load.history.take(hosts, axis=0) + share
            threshold = 1.0 - self.safety * self.full_spread(rows)
            flags: BoolArray = (load.requested.take(hosts) + s.vm_demand[vm]) / mips > threshold
            return flags
        rows, lengths = _history(load, hosts, vm)
        return self._decide(_utilisation(load, hosts, vm), rows, lengths)


def _masked_sorted(rows: FloatArray, lengths: IntArray, full: bool = False) -> FloatArray:
    # `full`: every row has HISTORY_LENGTH points, nothing to mask (the usual case).
    if full:
        padded = rows
    else:
        positions = np.arange(HISTORY_LENGTH)[None, :]
        padded = np.where(positions < lengths[:, None], rows, np.inf)
    result: FloatArray = np.sort(padded, axis=1)
    return result


def _medians(ordered: FloatArray, lengths: IntArray, full: bool = False) -> FloatArray:
    """Median of each row's first `length` (sorted) values."""
    if full:
        middle = HISTORY_LENGTH // 2
        low = ordered[:, (HISTORY_LENGTH - 1) // 2]
        high = ordered[:, middle]
    else:
        index = np.arange(len(lengths))
        low = ordered[index, (lengths - 1) // 2]
        high = ordered[index, lengths // 2]
    result: FloatArray = (low + high) / 2.0
    return result


def _full_medians(ordered: FloatArray) -> FloatArray:
    """`_medians` of sorted rows of HISTORY_LENGTH points."""
    result: FloatArray = (
        ordered[:, (HISTORY_LENGTH - 1) // 2] + ordered[:, HISTORY_LENGTH // 2]
    ) / 2.0
    return result


def _all_full(lengths: IntArray) -> bool:
    return bool(lengths.size) and int(lengths.min()) == HISTORY_LENGTH


class MedianAbsoluteDeviation(_Robust):
    def spread(self, rows: FloatArray, lengths: IntArray) -> FloatArray:
        full = _all_full(lengths)
        median = _medians(_masked_sorted(rows, lengths, full), lengths, full)
        deviations = np.abs(rows - median[:, None])
        return _medians(_masked_sorted(deviations, lengths, full), lengths, full)

    def full_spread(self, rows: FloatArray) -> FloatArray:
        ordered = rows.copy()
        ordered.sort(axis=1)  # np.sort(rows, axis=1) without its wrapper
        deviations = np.abs(rows - _full_medians(ordered)[:, None])
        deviations.sort(axis=1)  # a fresh array: sorted where it is
        return _full_medians(deviations)


def _java_round(x: float) -> int:
    return math.floor(x + 0.5)


class InterquartileRange(_Robust):
    def spread(self, rows: FloatArray, lengths: IntArray) -> FloatArray:
        full = _all_full(lengths)
        ordered = _masked_sorted(rows, lengths, full)
        if full:
            q1, q3 = _FULL_QUARTILES
            result: FloatArray = ordered[:, q3] - ordered[:, q1]
            return result
        index = np.arange(len(lengths))
        q1s = np.array([_quartile_positions(n)[0] for n in lengths.tolist()], dtype=np.int64)
        q3s = np.array([_quartile_positions(n)[1] for n in lengths.tolist()], dtype=np.int64)
        result = ordered[index, q3s] - ordered[index, q1s]
        return result

    def full_spread(self, rows: FloatArray) -> FloatArray:
        q1, q3 = _FULL_QUARTILES
        ordered = rows.copy()
        ordered.sort(axis=1)  # np.sort(rows, axis=1) without its wrapper
        result: FloatArray = ordered[:, q3] - ordered[:, q1]
        return result


def _quartile_positions(points: int) -> tuple[int, int]:
    return _java_round(0.25 * (points + 1)) - 1, _java_round(0.75 * (points + 1)) - 1


_FULL_QUARTILES = (7, 22)
"""`_quartile_positions(HISTORY_LENGTH)`, asked for every full row (a test checks it)."""


def regression_weights(points: int, at: float) -> FloatArray:
    """OLS prediction at x=`at` from y at x=1..points, as weights on the history
    newest first (history[j] sits at x = points − j)."""
    x = points - np.arange(points, dtype=np.float64)
    mean = (points + 1) / 2.0
    spread = float(((x - mean) ** 2).sum())
    weights: FloatArray = 1.0 / points + (at - mean) * (x - mean) / spread
    return weights


class LocalRegression:
    """Overloaded when safety × the predicted utilisation one migration ahead ≥ 1."""

    def __init__(self, safety: float) -> None:
        self.safety = safety
        self.fallback = Threshold(FALLBACK_THRESHOLD)
        self._weights: dict[int, FloatArray] = {}

    def _weights_for(self, steps_ahead: int) -> FloatArray:
        found = self._weights.get(steps_ahead)
        if found is None:
            found = regression_weights(REGRESSION_POINTS, REGRESSION_POINTS + steps_ahead)
            self._weights[steps_ahead] = found
        return found

    def predicted(self, load: Load, hosts: IntArray, vm: int = -1) -> FloatArray:
        """OLS prediction of each host's utilisation (with `vm` added) one migration
        ahead; linear in the history, so the VM's own prediction is simply added."""
        s = load.snapshot
        seconds = load.max_migration_seconds(hosts, vm)
        ahead = np.ceil(seconds / s.interval).astype(np.int64)
        low, high = int(ahead.min()), int(ahead.max())
        if low == high:
            # The usual case: one horizon for every host, no masking needed.
            weights = self._weights_for(low)
            values: FloatArray = load.history[hosts, :REGRESSION_POINTS] @ weights
            if vm >= 0:
                own = float(s.vm_history[vm, :REGRESSION_POINTS] @ weights)
                values = values + own * s.vm_mips[vm] / s.host_mips.take(hosts)
            return values
        result = np.empty(len(hosts))
        kinds = np.unique(ahead).tolist()
        for steps in kinds:
            weights = self._weights_for(int(steps))
            chosen = ahead == steps
            picked = hosts[chosen]
            values = load.history[picked, :REGRESSION_POINTS] @ weights
            if vm >= 0:
                own = float(s.vm_history[vm, :REGRESSION_POINTS] @ weights)
                values = values + own * s.vm_mips[vm] / s.host_mips[picked]
            result[chosen] = values
        return result

    def _decide(self, load: Load, hosts: IntArray, vm: int) -> BoolArray:
        if vm < 0 and hosts.size and load.one_step_migrations:
            lengths = load.history_length.take(hosts)
            if lengths.min() >= REGRESSION_POINTS:
                # Every host has history enough, so VMs too: each one's largest VM
                # moves within one interval, and `predicted` would take its
                # single-horizon branch with 1.
                weights = self._weights_for(1)
                alone: FloatArray = load.history[hosts, :REGRESSION_POINTS] @ weights
                judged: BoolArray = alone * self.safety >= 1.0
                return judged
        if (
            vm >= 0
            and hosts.size
            and load.one_step_migrations
            and load.vm_trimmed[vm] >= REGRESSION_POINTS
        ):
            # The usual case, without the general bookkeeping: every host has history
            # enough (the VM's own suffices) and every migration ends within one
            # interval, so `predicted` would take its single-horizon branch with 1.
            s = load.snapshot
            weights = self._weights_for(1)
            values: FloatArray = load.history[hosts, :REGRESSION_POINTS] @ weights
            own = float(s.vm_history[vm, :REGRESSION_POINTS] @ weights)
            values = values + own * s.vm_mips[vm] / s.host_mips.take(hosts)
            quick: BoolArray = values * self.safety >= 1.0
            return quick
        lengths = load.history_length[hosts]
        if vm >= 0:
            lengths = np.maximum(lengths, load.vm_trimmed[vm])
        enough = lengths >= REGRESSION_POINTS
        if enough.size and enough.all():
            # Every host has history enough: the fallback would be overwritten anyway.
            every: BoolArray = self.predicted(load, hosts, vm) * self.safety >= 1.0
            return every
        flags: BoolArray = _utilisation(load, hosts, vm) > FALLBACK_THRESHOLD
        if enough.any():
            prediction = self.predicted(load, hosts[enough], vm)
            flags[enough] = prediction * self.safety >= 1.0
        return flags

    def overloaded(self, load: Load, hosts: IntArray) -> BoolArray:
        return self._decide(load, hosts, -1)

    def overloaded_with(self, load: Load, hosts: IntArray, vm: int) -> BoolArray:
        return self._decide(load, hosts, vm)
