"""Durations as people write them in rule files: `90s`, `5m`, `1h30m`, `500ms`,
`1d`, or a plain number of seconds."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(raw: Any) -> float:
    """Seconds in `raw`; raises ValueError saying what a duration looks like."""
    if isinstance(raw, bool):
        raise ValueError(f"not a duration: {raw!r}")
    if isinstance(raw, int | float):
        seconds = float(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        try:
            seconds = float(text)
        except ValueError:
            seconds = _parse_units(text)
    else:
        raise ValueError(f"not a duration: {raw!r} (write 30s, 5m, 1h30m or seconds)")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be finite and >= 0, got {raw!r}")
    return seconds


def _parse_units(text: str) -> float:
    position = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        raise ValueError(f"not a duration: {text!r} (write 30s, 5m, 1h30m or seconds)")
    return total


def format_duration(seconds: float) -> str:
    """`4m`, `1h30m`, `90.5s`: the shortest exact spelling."""
    if seconds == 0:
        return "0s"
    if seconds != int(seconds):
        return f"{seconds:g}s"
    rest = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


Duration = Annotated[float, BeforeValidator(parse_duration)]
