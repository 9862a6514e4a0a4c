"""The time arguments rrdtool accepts that opendrs supports: epoch seconds, `now`
(or `N`), and offsets such as `now-1d`, `-2h`, `end-24h`, `start+6h`."""

from __future__ import annotations

import re

from opendrs.domain.errors import InvalidInput

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}
_OFFSET = re.compile(r"([+-])\s*(\d+)\s*([a-z]*)")
_EPOCH = re.compile(r"\d+(\.\d*)?")


def _offset(text: str, source: str) -> float:
    total = 0.0
    position = 0
    text = text.strip()
    while position < len(text):
        match = _OFFSET.match(text, position)
        if match is None:
            raise InvalidInput(f"cannot read time offset {text!r}", source=source)
        unit = match.group(3) or "s"
        if unit not in _UNITS:
            raise InvalidInput(f"unknown time unit {unit!r} in {text!r}", source=source)
        sign = -1 if match.group(1) == "-" else 1
        total += sign * int(match.group(2)) * _UNITS[unit]
        position = match.end()
    return total


def _split(text: str) -> tuple[str, str]:
    """`end-24h` → (`end`, `-24h`); `-1d` → (`now`, `-1d`)."""
    stripped = text.strip()
    if stripped and stripped[0] in "+-":
        return "now", stripped
    match = re.match(r"([A-Za-z]+)(.*)", stripped)
    if match is None:
        return stripped, ""
    return match.group(1).lower(), match.group(2)


def parse_time(text: str | int | float, *, now: float, source: str = "time") -> float:
    """An absolute time: epoch seconds, `now`/`N`, or `now` plus offsets."""
    if isinstance(text, int | float):
        return float(text)
    stripped = str(text).strip()
    if _EPOCH.fullmatch(stripped):
        return float(stripped)
    anchor, rest = _split(stripped)
    if anchor not in ("now", "n"):
        raise InvalidInput(f"cannot read time {text!r}", source=source)
    return now + _offset(rest, source)


def parse_range(
    start: str | int | float | None,
    end: str | int | float | None,
    *,
    now: float,
    default_span: float = 86400.0,
) -> tuple[float, float]:
    """A fetch range as rrdtool resolves it: end defaults to now, start to
    end-24h; either may be relative to the other (`end-1d`, `start+6h`)."""
    start_text = "end-" + str(int(default_span)) if start is None else start
    end_text = "now" if end is None else end

    def relative(value: str | int | float) -> tuple[str, str] | None:
        if isinstance(value, int | float):
            return None
        anchor, rest = _split(str(value))
        if anchor in ("start", "s", "end", "e"):
            return ("start" if anchor in ("start", "s") else "end"), rest
        return None

    start_rel = relative(start_text)
    end_rel = relative(end_text)
    if start_rel and end_rel:
        raise InvalidInput("start and end cannot both be relative to each other", source="fetch")
    if start_rel and start_rel[0] == "start":
        raise InvalidInput("start cannot be relative to itself", source="fetch --start")
    if end_rel and end_rel[0] == "end":
        raise InvalidInput("end cannot be relative to itself", source="fetch --end")
    if start_rel:
        end_value = parse_time(end_text, now=now, source="fetch --end")
        return end_value + _offset(start_rel[1], "fetch --start"), end_value
    if end_rel:
        start_value = parse_time(start_text, now=now, source="fetch --start")
        return start_value, start_value + _offset(end_rel[1], "fetch --end")
    return (
        parse_time(start_text, now=now, source="fetch --start"),
        parse_time(end_text, now=now, source="fetch --end"),
    )
