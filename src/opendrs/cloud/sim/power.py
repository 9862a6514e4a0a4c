"""Host power models: watts measured at 0%, 10%, ... 100% CPU (SPECpower style),
linearly interpolated in between."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import overload

import numpy as np
import numpy.typing as npt

from opendrs.domain.errors import InvalidInput

_LOADS = np.linspace(0.0, 1.0, 11)


class PowerModel:
    """Power draw as a function of CPU utilisation (0..1, clamped)."""

    def __init__(self, watts: Sequence[float]) -> None:
        points = [float(w) for w in watts]
        if len(points) != 11:
            raise InvalidInput(
                f"needs 11 values (0%, 10%, ... 100%), got {len(points)}", source="power model"
            )
        if any(w < 0 for w in points):
            raise InvalidInput("watts cannot be negative", source="power model")
        if any(b < a for a, b in itertools.pairwise(points)):
            raise InvalidInput("power must not decrease with load", source="power model")
        self._watts = np.array(points, dtype=np.float64)

    @property
    def points(self) -> tuple[float, ...]:
        return tuple(float(w) for w in self._watts)

    @property
    def idle(self) -> float:
        return float(self._watts[0])

    @property
    def peak(self) -> float:
        return float(self._watts[-1])

    @overload
    def watts(self, utilisation: float) -> float: ...

    @overload
    def watts(self, utilisation: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...

    def watts(
        self, utilisation: float | npt.NDArray[np.float64]
    ) -> float | npt.NDArray[np.float64]:
        """Watts at `utilisation`; values outside 0..1 are clamped to the ends."""
        if isinstance(utilisation, np.ndarray):
            return np.interp(np.clip(utilisation, 0.0, 1.0), _LOADS, self._watts)
        return float(np.interp(min(max(float(utilisation), 0.0), 1.0), _LOADS, self._watts))

    def __repr__(self) -> str:
        return f"PowerModel({list(self.points)!r})"
