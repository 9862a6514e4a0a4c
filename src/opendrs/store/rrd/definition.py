"""RRDtool's definition strings (`DS:cpu:GAUGE:600:0:100`, `RRA:AVERAGE:0.5:1:800`,
`--step`, `--start`) parsed into values, and the default layout of an instance archive."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from opendrs.domain.errors import InvalidInput
from opendrs.store.rrd.numbers import parse_float
from opendrs.store.rrd.timespec import parse_time

RRDTOOL_NAME = re.compile(r"^[-a-zA-Z0-9_]{1,19}$")
MAX_COLUMN_NAME_BYTES = 120
# rrdtool refuses a start before 1980; so do we.
EARLIEST_TIME = 3600 * 24 * 365 * 10


class SourceType(IntEnum):
    GAUGE = 0
    COUNTER = 1
    DERIVE = 2
    ABSOLUTE = 3


class Consolidation(IntEnum):
    AVERAGE = 0
    MIN = 1
    MAX = 2
    LAST = 3


@dataclass(frozen=True, slots=True)
class DataSource:
    """One series: how its updates become rates (`DS:name:TYPE:heartbeat:min:max`)."""

    name: str
    type: SourceType
    heartbeat: int
    min: float = math.nan
    max: float = math.nan

    def spec(self) -> str:
        bounds = f"{_bound(self.min)}:{_bound(self.max)}"
        return f"DS:{self.name}:{self.type.name}:{self.heartbeat}:{bounds}"


@dataclass(frozen=True, slots=True)
class Archive:
    """One round-robin archive (`RRA:CF:xff:steps:rows`)."""

    cf: Consolidation
    xff: float
    steps: int
    rows: int

    def spec(self) -> str:
        return f"RRA:{self.cf.name}:{self.xff:g}:{self.steps}:{self.rows}"


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """Everything `rrdtool create` is given: step, start, data sources, archives."""

    step: int
    start: int | None
    sources: tuple[DataSource, ...]
    archives: tuple[Archive, ...]
    no_overwrite: bool = False


def _bound(value: float) -> str:
    return "U" if math.isnan(value) else f"{value:g}"


_DURATION_UNITS = {
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "M": 31 * 86400,
    "y": 366 * 86400,
}


def scaled_duration(token: str, divisor: int, what: str, source: str) -> int:
    """A count (`800`) or a duration (`1d`) divided by `divisor`, as rrdtool reads
    heartbeats, steps and row counts."""
    match = re.fullmatch(r"(\d+)([smhdwMy]?)", token)
    if match is None:
        raise InvalidInput(
            f"{what} {token!r} must be a positive number, optionally with a unit s/m/h/d/w/M/y",
            source=source,
        )
    value = int(match.group(1))
    unit = match.group(2)
    if value == 0:
        raise InvalidInput(f"{what} {token!r} must be positive", source=source)
    if not unit:
        return value
    seconds = value * _DURATION_UNITS[unit]
    if seconds % divisor:
        raise InvalidInput(
            f"{what} {token!r} is not a whole multiple of {divisor} seconds", source=source
        )
    return seconds // divisor


def _number(token: str, what: str, source: str) -> float:
    if token == "U":
        return math.nan
    try:
        return parse_float(token)
    except ValueError:
        raise InvalidInput(f"{what} {token!r} is not a number or U", source=source) from None


def parse_data_source(definition: str) -> DataSource:
    """`DS:name:TYPE:heartbeat:min:max` exactly as rrdtool accepts it."""
    source = definition
    parts = definition.split(":")
    if len(parts) != 6 or parts[0] != "DS":
        raise InvalidInput(
            "a data source is DS:name:TYPE:heartbeat:min:max (6 fields separated by ':')",
            source=source,
        )
    _, name, kind, heartbeat, low, high = parts
    if not RRDTOOL_NAME.match(name):
        raise InvalidInput(
            f"data source name {name!r} must be 1-19 characters of a-z A-Z 0-9 _ -",
            source=source,
            field="name",
        )
    try:
        source_type = SourceType[kind]
    except KeyError:
        supported = ", ".join(t.name for t in SourceType)
        raise InvalidInput(
            f"data source type {kind!r} is not supported (use one of {supported})",
            source=source,
            field="type",
        ) from None
    beat = scaled_duration(heartbeat, 1, "heartbeat", source)
    minimum = _number(low, "min", source)
    maximum = _number(high, "max", source)
    if minimum >= maximum:
        raise InvalidInput("min must be less than max", source=source, field="min")
    return DataSource(name, source_type, beat, minimum, maximum)


def parse_archive(definition: str, step: int) -> Archive:
    """`RRA:CF:xff:steps:rows` exactly as rrdtool accepts it (steps and rows may
    be durations such as `1h` and `1y`)."""
    source = definition
    parts = definition.split(":")
    if len(parts) != 5 or parts[0] != "RRA":
        raise InvalidInput(
            "an archive is RRA:CF:xff:steps:rows (5 fields separated by ':')", source=source
        )
    _, cf_name, xff_text, steps_text, rows_text = parts
    try:
        cf = Consolidation[cf_name]
    except KeyError:
        supported = ", ".join(c.name for c in Consolidation)
        raise InvalidInput(
            f"consolidation function {cf_name!r} is not supported (use one of {supported})",
            source=source,
            field="cf",
        ) from None
    try:
        xff = parse_float(xff_text)
    except ValueError:
        xff = math.nan
    if not 0.0 <= xff < 1.0:
        raise InvalidInput(
            f"xff {xff_text!r} must be a number in [0, 1)", source=source, field="xff"
        )
    steps = scaled_duration(steps_text, step, "steps", source)
    rows = scaled_duration(rows_text, step * steps, "rows", source)
    return Archive(cf, xff, steps, rows)


def parse_create_args(args: Sequence[str], *, now: float) -> CreateRequest:
    """The arguments of `rrdtool create` after the file name: options, DS and RRA."""
    step = 300
    start: int | None = None
    no_overwrite = False
    definitions: list[str] = []
    items = [str(a) for a in args]
    i = 0
    while i < len(items):
        item = items[i]
        option, _, inline = item.partition("=") if item.startswith("--") else (item, "", "")
        if option in ("--step", "-s", "--start", "-b"):
            if inline:
                value = inline
            elif i + 1 < len(items):
                i += 1
                value = items[i]
            else:
                raise InvalidInput(f"option {option} needs a value", source="create")
            if option in ("--step", "-s"):
                step = scaled_duration(value, 1, "step", "create --step")
            else:
                start = int(parse_time(value, now=now, source="create --start"))
                if start < EARLIEST_TIME:
                    raise InvalidInput(
                        f"start {value!r} is before 1980", source="create", field="--start"
                    )
        elif option in ("--no-overwrite", "-O"):
            no_overwrite = True
        elif item.startswith(("DS:", "RRA:")):
            definitions.append(item)
        else:
            raise InvalidInput(f"cannot parse argument {item!r}", source="create")
        i += 1
    sources = [parse_data_source(d) for d in definitions if d.startswith("DS:")]
    archives = [parse_archive(d, step) for d in definitions if d.startswith("RRA:")]
    names = [s.name for s in sources]
    duplicates = sorted(n for n, seen in Counter(names).items() if seen > 1)
    if duplicates:
        raise InvalidInput(f"duplicate data source name {duplicates[0]!r}", source="create")
    if not archives:
        raise InvalidInput("at least one RRA:... archive is needed", source="create")
    if not sources:
        raise InvalidInput("at least one DS:... data source is needed", source="create")
    return CreateRequest(step, start, tuple(sources), tuple(archives), no_overwrite)


def validate_column_name(name: str) -> str:
    """Wide archives take longer names than rrdtool (an instance id and a meter)."""
    if not name or len(name.encode()) > MAX_COLUMN_NAME_BYTES:
        raise InvalidInput(
            f"column name {name!r} must be 1-{MAX_COLUMN_NAME_BYTES} bytes", field="name"
        )
    if any(ord(c) < 32 for c in name):
        raise InvalidInput(f"column name {name!r} contains control characters", field="name")
    return name


# The seed's per-instance layout: 5-minute step, AVERAGE and MAX kept for
# 800 rows at 5 minutes, 30 minutes, 2 hours and 1 day.
DEFAULT_STEP = 300
DEFAULT_DATA_SOURCES: tuple[str, ...] = (
    "DS:cpu:GAUGE:600:0:100",
    "DS:rx:COUNTER:600:0:1250000",
    "DS:tx:COUNTER:600:0:1250000",
    "DS:rd:COUNTER:600:0:U",
    "DS:wr:COUNTER:600:0:U",
)
DEFAULT_ARCHIVES: tuple[str, ...] = tuple(
    f"RRA:{cf}:0.5:{steps}:800" for cf in ("AVERAGE", "MAX") for steps in (1, 6, 24, 288)
)


def default_archives(step: int = DEFAULT_STEP) -> tuple[Archive, ...]:
    return tuple(parse_archive(a, step) for a in DEFAULT_ARCHIVES)


def default_sources() -> tuple[DataSource, ...]:
    return tuple(parse_data_source(d) for d in DEFAULT_DATA_SOURCES)
