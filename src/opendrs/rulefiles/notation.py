"""promtool's expanding notation for test input: `a+bxn` (n+1 values from a in
steps of b, `a-bxn` counting down), `axn` (a, n+1 times), `_` (a missing
sample), `_xn` (n missing samples) and `stale` (the series ends there)."""

from __future__ import annotations

import re
from enum import Enum

from opendrs.domain.errors import InvalidInput


class Marker(Enum):
    MISSING = "_"
    STALE = "stale"


Point = float | Marker

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:Inf|inf|NaN|nan)"
_SERIES = re.compile(rf"^(?P<a>{_NUMBER})(?:(?P<sign>[-+])(?P<b>{_NUMBER}))?x(?P<n>\d+)$")
_GAPS = re.compile(r"^_x(?P<n>\d+)$")


def expand(text: str, *, source: str = "", field: str = "values") -> list[Point]:
    """The points `text` stands for, sample i being at i × interval."""
    points: list[Point] = []
    for token in text.split():
        if token == "_":
            points.append(Marker.MISSING)
            continue
        if token == "stale":
            points.append(Marker.STALE)
            continue
        gaps = _GAPS.match(token)
        if gaps:
            points.extend([Marker.MISSING] * int(gaps.group("n")))
            continue
        run = _SERIES.match(token)
        if run:
            start = float(run.group("a"))
            step = float(run.group("b") or 0.0)
            if run.group("sign") == "-":
                step = -step
            points.extend(start + i * step for i in range(int(run.group("n")) + 1))
            continue
        try:
            points.append(float(token))
        except ValueError:
            raise InvalidInput(
                f"cannot read {token!r}: expected a number, a+bxn, a-bxn, axn, _, _xn or stale",
                source=source,
                field=field,
            ) from None
    return points
