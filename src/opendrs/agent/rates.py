"""Per-second rates from cumulative counters, with counter-reset detection:
a first observation or a decrease gives no rate, never a negative one."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

NS_PER_SECOND = 1e9


class RateTable:
    """The last value of every (entity, meter, series) counter, and the rates they imply.

    `series` separates counters of one meter on one entity (a disk device, an
    interface); it is "" for single counters.
    """

    def __init__(self) -> None:
        # (value, time) of the last observation; a plain tuple: this is the hot path
        self._last: dict[tuple[str, str, str], tuple[float, float]] = {}
        self.resets = 0

    def rate(
        self, entity: str, meter: str, value: float, time: float, *, series: str = ""
    ) -> float | None:
        """Record `value` at `time`; return the per-second rate since the previous
        observation, or None for a first observation, a decrease (a counter reset:
        the new value becomes the baseline) or a time that did not move forward."""
        key = (entity, meter, series)
        last = self._last
        previous = last.get(key)
        last[key] = (value, time)
        if previous is None:
            return None
        before, then = previous
        elapsed = time - then
        if elapsed <= 0:
            return None
        if value < before:
            self.resets += 1
            return None
        return (value - before) / elapsed

    def observations(
        self, keys: Iterable[tuple[str, str, str]]
    ) -> list[tuple[float, float] | None]:
        """The last (value, time) of each (entity, meter, series), None if unseen."""
        get = self._last.get
        return [get(key) for key in keys]

    def record(
        self,
        keys: Sequence[tuple[str, str, str]],
        values: npt.NDArray[np.float64],
        times: npt.NDArray[np.float64],
        *,
        resets: int = 0,
    ) -> None:
        """Record many observations at once (whose rates the caller worked out the
        way `rate` does), with the counter resets among them."""
        self._last.update(zip(keys, zip(values.tolist(), times.tolist(), strict=True), strict=True))
        self.resets += resets

    def forget(self, entity: str) -> None:
        """Drop every counter of `entity` (it left this host)."""
        for key in [k for k in self._last if k[0] == entity]:
            del self._last[key]

    def entities(self) -> set[str]:
        return {entity for entity, _, _ in self._last}


def cpu_util(cpu_ns_per_second: float, vcpus: int) -> float:
    """CPU use in percent of `vcpus` from a cpu-time rate (ns/s), within 0..100."""
    if vcpus < 1:
        raise ValueError(f"vcpus must be at least 1, got {vcpus}")
    percent = cpu_ns_per_second / (vcpus * NS_PER_SECOND) * 100.0
    return min(max(percent, 0.0), 100.0)
