"""The functions of rrdtool's Python binding, with the same arguments and return
shapes (`create`, `update`, `fetch`, `info`, `lastupdate`, `first`, `last`), on
opendrs round-robin files. Errors are opendrs errors (`OperationalError` is
their common base); an update call is all-or-nothing, where rrdtool keeps the
updates before the failing one."""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from opendrs.domain.clock import Clock, WallClock
from opendrs.domain.errors import InvalidInput, OpendrsError
from opendrs.store.rrd.archive import Batch, RoundRobinFile
from opendrs.store.rrd.definition import SourceType, parse_create_args, scaled_duration
from opendrs.store.rrd.fetch import parse_cf
from opendrs.store.rrd.numbers import parse_counter, parse_float
from opendrs.store.rrd.timespec import parse_range, parse_time

OperationalError = OpendrsError


def _flatten(args: Iterable[Any]) -> list[str]:
    out: list[str] = []
    for arg in args:
        if isinstance(arg, list | tuple):
            out.extend(_flatten(arg))
        else:
            out.append(os.fspath(arg) if isinstance(arg, os.PathLike) else str(arg))
    return out


def _options(
    args: Sequence[str], with_value: dict[str, str], flags: dict[str, str], command: str
) -> tuple[dict[str, str], list[str]]:
    """getopt-style: `--name value`, `--name=value`, `-n value`; the rest positional."""
    options: dict[str, str] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in with_value:
            if eq:
                options[with_value[name]] = inline
            elif i + 1 < len(args):
                i += 1
                options[with_value[name]] = args[i]
            else:
                raise InvalidInput(f"option {name} needs a value", source=command)
        elif name in flags:
            options[flags[name]] = ""
        elif arg.startswith("-") and len(arg) > 1 and not arg[1].isdigit():
            raise InvalidInput(f"unknown option {arg!r}", source=command)
        else:
            positional.append(arg)
        i += 1
    return options, positional


def create(*args: Any, clock: Clock | None = None) -> None:
    """`create(path, "--step", "300", "--start", t, "DS:…", "RRA:…")`."""
    items = _flatten(args)
    if not items:
        raise InvalidInput("need the name of the file to create", source="create")
    path, rest = items[0], items[1:]
    clock = clock or WallClock()
    request = parse_create_args(rest, now=clock.now())
    if request.no_overwrite and os.path.exists(path):
        raise InvalidInput(f"creating {path!r}: file exists", source="create")
    RoundRobinFile.create(
        path,
        step=request.step,
        archives=request.archives,
        sources=request.sources,
        start=request.start,
        capacity=len(request.sources),
        clock=clock,
    ).close()


def _reading_time(text: str, now: float, path: str) -> tuple[int, int]:
    if text == "N":
        when = now
    else:
        try:
            when = parse_float(text)
        except ValueError:
            raise InvalidInput(f"cannot read time {text!r}", source=path, field="time") from None
        if when < 0:
            when += now
    second = math.floor(when)
    return second, int((when - second) * 1e6)


def update(*args: Any, clock: Clock | None = None) -> None:
    """`update(path, "t:v1:v2", …)`, with `--template name:name` and
    `--skip-past-updates` as rrdtool has them. `N` is now, `U` unknown."""
    items = _flatten(args)
    options, positional = _options(
        items,
        {"--template": "template", "-t": "template"},
        {"--skip-past-updates": "skip", "-s": "skip"},
        "update",
    )
    if len(positional) < 2:
        raise InvalidInput("need a file name and at least one update", source="update")
    path, readings = positional[0], positional[1:]
    clock = clock or WallClock()
    with RoundRobinFile.open(path, clock=clock) as rrd:
        sources = rrd.sources()
        names = [s.name for s in sources]
        order = list(range(len(names)))
        if "template" in options:
            wanted = options["template"].split(":")
            missing = [n for n in wanted if n not in names]
            if missing:
                raise InvalidInput(
                    f"template names unknown data source {missing[0]!r}", source=path
                )
            order = [names.index(n) for n in wanted]
        now = clock.now()
        count = len(readings)
        width = len(names)
        value = np.full((count, width), math.nan)
        unknown = np.ones((count, width), dtype=bool)
        magnitude = np.zeros((count, width), dtype=np.uint64)
        negative = np.zeros((count, width), dtype=bool)
        seconds: list[int] = []
        usecs: list[int] = []
        last = (int(rrd.last_update), round((rrd.last_update % 1) * 1e6))
        for text in readings:
            at = text.find("@")
            colon = text.find(":")
            if at >= 0 and (colon < 0 or at < colon):
                stamp, _, rest = text.partition("@")
                when = parse_time(stamp, now=now, source=path)
                second, usec = math.floor(when), 0
            elif colon >= 0:
                stamp, _, rest = text.partition(":")
                second, usec = _reading_time(stamp, now, path)
            else:
                raise InvalidInput(f"expected a timestamp in {text!r}", source=path)
            parts = rest.split(":")
            if len(parts) != len(order):
                raise InvalidInput(
                    f"expected {len(order)} data source readings (got {len(parts)}) from {text!r}",
                    source=path,
                )
            if "skip" in options and (second, usec) <= last:
                continue
            last = (second, usec)
            seconds.append(second)
            usecs.append(usec)
            for column, part in zip(order, parts, strict=True):
                _parse_value(
                    part,
                    sources[column].type,
                    names[column],
                    path,
                    len(seconds) - 1,
                    column,
                    value,
                    unknown,
                    magnitude,
                    negative,
                )
        if not seconds:
            return
        rows = len(seconds)
        rrd.apply_batch(
            Batch(seconds, usecs, value[:rows], unknown[:rows], magnitude[:rows], negative[:rows])
        )


def _parse_value(
    text: str,
    kind: SourceType,
    name: str,
    path: str,
    row: int,
    column: int,
    value: np.ndarray[Any, Any],
    unknown: np.ndarray[Any, Any],
    magnitude: np.ndarray[Any, Any],
    negative: np.ndarray[Any, Any],
) -> None:
    if text.startswith("U"):
        return  # librrd treats anything starting with U as unknown
    try:
        if kind in (SourceType.COUNTER, SourceType.DERIVE):
            mag, neg = parse_counter(text, signed=kind is SourceType.DERIVE)
            magnitude[row, column] = mag
            negative[row, column] = neg
            value[row, column] = -float(mag) if neg else float(mag)
        else:
            value[row, column] = parse_float(text)
    except ValueError as exc:
        raise InvalidInput(str(exc), source=path, field=name) from None
    unknown[row, column] = False


def fetch(
    *args: Any, clock: Clock | None = None
) -> tuple[tuple[int, int, int], tuple[str, ...], list[tuple[float | None, ...]]]:
    """`fetch(path, CF, "--start", s, "--end", e, ["-r", res], ["-a"])` →
    `((start, end, step), names, rows)` with None for unknown."""
    items = _flatten(args)
    options, positional = _options(
        items,
        {
            "--start": "start",
            "-s": "start",
            "--end": "end",
            "-e": "end",
            "--resolution": "resolution",
            "-r": "resolution",
        },
        {"--align-start": "align", "-a": "align"},
        "fetch",
    )
    if len(positional) != 2:
        raise InvalidInput("usage: fetch(path, CF, [options])", source="fetch")
    path, cf_name = positional
    cf = parse_cf(cf_name)
    clock = clock or WallClock()
    start_f, end_f = parse_range(options.get("start"), options.get("end"), now=clock.now())
    start, end = int(start_f), int(end_f)
    resolution = 1
    if "resolution" in options:
        resolution = scaled_duration(options["resolution"], 1, "resolution", "fetch")
    if "align" in options:
        delta = start % resolution
        start -= delta
        end -= delta
    with RoundRobinFile.open(path, writable=False, clock=clock) as rrd:
        result = rrd.fetch(cf, start, end, resolution)
    rows = [tuple(None if math.isnan(v) else v for v in row) for row in result.values.tolist()]
    return (result.start, result.end, result.step), result.names, rows


def info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """rrdtool info's keys. The rrdtool 1.7.2 binding loses every finite float
    (min, max, xff, value…) through a bug; these are all present here."""
    with RoundRobinFile.open(path, writable=False) as rrd:
        return rrd.info()


def lastupdate(path: str | os.PathLike[str]) -> dict[str, Any]:
    """`{'date': datetime, 'ds': {name: last reading or None}}`."""
    with RoundRobinFile.open(path, writable=False) as rrd:
        details = rrd.info()
        names = [s.name for s in rrd.sources()]
        readings: dict[str, float | None] = {}
        for name in names:
            text = details[f"ds[{name}].last_ds"]
            readings[name] = None if text == "U" else float(text)
        date = datetime.datetime.fromtimestamp(int(rrd.last_update))
        return {"date": date, "ds": readings}


def last(path: str | os.PathLike[str]) -> int:
    with RoundRobinFile.open(path, writable=False) as rrd:
        return int(rrd.last_update)


def first(path: str | os.PathLike[str], rraindex: int = 0) -> int:
    """The time of the oldest row archive `rraindex` can hold."""
    with RoundRobinFile.open(path, writable=False) as rrd:
        if not 0 <= rraindex < len(rrd.archives):
            raise InvalidInput(
                f"archive {rraindex} does not exist (this file has {len(rrd.archives)})",
                source=os.fspath(path),
                field="rraindex",
            )
        archive = rrd.archives[rraindex]
        rra_step = rrd.step * archive.steps
        end = int(rrd.last_update)
        return end - end % rra_step - (archive.rows - 1) * rra_step
