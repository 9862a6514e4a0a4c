"""Which VM leaves an overloaded host next (one at a time, as CloudSim does): minimum
migration time (MMT), minimum utilisation (MU), random (RS, seeded here so runs
repeat) and maximum correlation (MC, falling back to MMT when the fit is impossible)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from opendrs.decision.consolidation.load import Load


class Selector(Protocol):
    def pick(self, load: Load, host: int) -> int | None:
        """A VM to take off `host`, or None when none may move."""
        ...


def _first_minimum(vms: list[int], metric: list[float]) -> int:
    best = 0
    for i in range(1, len(vms)):
        if metric[i] < metric[best]:
            best = i
    return vms[best]


class MinimumMigrationTime:
    def pick(self, load: Load, host: int) -> int | None:
        vms = load.movable(host)
        if not vms:
            return None
        return _first_minimum(vms, load.snapshot.vm_memory_mb[vms].tolist())


class MinimumUtilisation:
    def pick(self, load: Load, host: int) -> int | None:
        vms = load.movable(host)
        if not vms:
            return None
        s = load.snapshot
        return _first_minimum(vms, (s.vm_demand[vms] / s.vm_mips[vms]).tolist())


class RandomSelection:
    def __init__(self, seed: int) -> None:
        self._random = np.random.default_rng(seed)

    def pick(self, load: Load, host: int) -> int | None:
        vms = load.movable(host)
        if not vms:
            return None
        return vms[int(self._random.integers(len(vms)))]


class MaximumCorrelation:
    """The VM whose history the other VMs of the host explain best (largest R²)."""

    def __init__(self) -> None:
        self.fallback = MinimumMigrationTime()

    def pick(self, load: Load, host: int) -> int | None:
        vms = load.movable(host)
        if not vms:
            return None
        s = load.snapshot
        n = len(vms)
        samples = int(s.vm_history_length[vms].min())
        # OLS with an intercept needs more observations than coefficients.
        if n < 2 or samples <= n:
            return self.fallback.pick(load, host)
        data = s.vm_history[vms, :samples]
        scores: list[float] = []
        for i in range(n):
            y = data[i]
            others = np.delete(data, i, axis=0).T
            design = np.column_stack([np.ones(samples), others])
            coefficients, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
            if rank < design.shape[1]:
                return self.fallback.pick(load, host)
            residual = y - design @ coefficients
            total = float(((y - y.mean()) ** 2).sum())
            scores.append(1.0 - float(residual @ residual) / total if total > 0 else float("nan"))
        best, best_score = 0, float(np.finfo(np.float64).tiny)
        for i, score in enumerate(scores):
            if score > best_score:
                best, best_score = i, score
        return vms[best]
