"""Which VM leaves an overloaded host next (one at a time, as CloudSim does): minimum
migration time (MMT), minimum utilisation (MU), random (RS, seeded here so runs
repeat) and maximum correlation (MC, falling back to MMT when the fit is impossible;
one SVD per host decides it unless the per-VM fits are needed to call it)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from opendrs.decision.consolidation.load import Load
from opendrs.decision.consolidation.snapshot import FloatArray


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


# How far apart the two best R² must be, in units of eps·cond², for the one-SVD
# scores to pick what a regression per VM would (their gap to the exact scores
# stays below ~0.4·eps·cond on PlanetLab hosts; the margin is 2,500 times that at
# the worst condition let through, and far more below it).
_SCORE_MARGIN = 1000.0
_MAX_CONDITION = 1e5
_EPSILON = float(np.finfo(np.float64).eps)


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
        clear = _clear_winner(data)
        if clear is not None:
            return vms[clear]
        return self._regressions(load, host, vms, data)

    def _regressions(self, load: Load, host: int, vms: list[int], data: FloatArray) -> int | None:
        """The definition: one least-squares fit per VM (when the scores are too close
        to call, or the histories too collinear, for `_clear_winner`)."""
        n, samples = data.shape
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


def _clear_winner(data: FloatArray) -> int | None:
    """The row of `data` with the largest R² against the others (with an intercept),
    from one SVD of the whole design: the residual of column j regressed on the rest
    is 1 / (DᵀD)⁻¹_jj. None unless the design is well conditioned (so every per-VM fit
    has full rank) and one score leads the rest, and exceeds 0, by far more than the
    rounding that separates these scores from the per-VM fits."""
    n, samples = data.shape
    design = np.empty((samples, n + 1))
    design[:, 0] = 1.0
    design[:, 1:] = data.T
    try:
        singular, right = np.linalg.svd(design, full_matrices=False)[1:]
    except np.linalg.LinAlgError:
        return None
    if not singular[-1] > 0.0:
        return None
    condition = float(singular[0] / singular[-1])
    if condition > _MAX_CONDITION:
        return None
    # The ufuncs' reduce is what sum() and mean() call (mean then divides by the
    # count), and x ** 2 is x * x: the same values without the wrappers.
    scaled = right / singular[:, None]
    inverse_diagonal = np.add.reduce(scaled * scaled, axis=0)[1:]
    centred = data - np.add.reduce(data, axis=1, keepdims=True) / samples
    total = np.add.reduce(centred * centred, axis=1)
    if not (total > 0.0).all():
        return None
    scores = 1.0 - 1.0 / (inverse_diagonal * total)
    best = int(np.argmax(scores))
    margin = _SCORE_MARGIN * _EPSILON * condition * condition
    runner_up = float(np.partition(scores, n - 2)[n - 2])  # the best when tied
    if not (scores[best] > margin and scores[best] - runner_up > margin):
        return None
    return best
