"""Sliding time windows over one series: the samples in (t - w, t] and the
aggregates a rule reduces them to."""

from __future__ import annotations

from collections import deque

from opendrs.cep.rule import Aggregate


class Window:
    """The recent samples of one series; a window of 0 keeps the latest only."""

    __slots__ = ("length", "points")

    def __init__(self, length: float) -> None:
        self.length = length
        self.points: deque[tuple[float, float]] = deque()

    def add(self, time: float, value: float) -> None:
        """Append a sample (the caller guarantees times increase) and expire the old."""
        points = self.points
        points.append((time, value))
        if self.length <= 0:
            while len(points) > 1:
                points.popleft()
            return
        self.expire(time)

    def expire(self, now: float) -> None:
        """Drop what left the window (t - w, now]."""
        if self.length <= 0:
            return
        horizon = now - self.length
        points = self.points
        while points and points[0][0] <= horizon:
            points.popleft()

    def values(self) -> list[float]:
        return [v for _, v in self.points]

    def reduce(self, aggregate: Aggregate) -> float | None:
        """The aggregate of what is in the window; None when it is empty (or a rate
        has fewer than two samples)."""
        points = self.points
        if not points:
            return None
        if aggregate == Aggregate.LAST:
            return points[-1][1]
        if aggregate == Aggregate.COUNT:
            return float(len(points))
        values = [v for _, v in points]
        if aggregate == Aggregate.MEAN:
            return sum(values) / len(values)
        if aggregate == Aggregate.MAX:
            return max(values)
        if aggregate == Aggregate.MIN:
            return min(values)
        if aggregate == Aggregate.SUM:
            return sum(values)
        return _rate(points)


def _rate(points: deque[tuple[float, float]]) -> float | None:
    """Per-second increase from the first to the last sample; a decrease is a counter
    reset, after which the counter counts from zero (as Prometheus's rate does)."""
    if len(points) < 2:
        return None
    increase = 0.0
    previous = points[0][1]
    for _, value in list(points)[1:]:
        increase += value - previous if value >= previous else value
        previous = value
    elapsed = points[-1][0] - points[0][0]
    return increase / elapsed if elapsed > 0 else None
