"""PlanetLab CPU traces: loading one day's `<day>.csv.gz`, choosing N of them,
and reading utilisation at any time the way CloudSim does (linear between
samples, a last sample repeated, then clamped or wrapped)."""

from __future__ import annotations

import csv
import gzip
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from opendrs.domain.errors import InvalidInput

TRACE_STEP_SECONDS = 300.0

Selection = Literal["busiest", "sorted"]


@dataclass(frozen=True, slots=True, eq=False)
class Trace:
    """One VM's utilisation: `values` are fractions 0..1 at every step, with
    CloudSim's extra last point (a copy of the last measured one) appended."""

    name: str
    values: npt.NDArray[np.float64]

    @property
    def mean(self) -> float:
        """Mean of the measured points (the appended copy is not a measurement)."""
        return float(self.values[:-1].mean())

    @property
    def steps(self) -> int:
        """Number of measured points."""
        return len(self.values) - 1

    def at(self, t: float, *, step: float = TRACE_STEP_SECONDS, wrap: bool = True) -> float:
        """Utilisation `t` seconds after the start of the trace."""
        return float(interpolate(self.values[np.newaxis, :], t, step=step, wrap=wrap)[0])


def interpolate(
    matrix: npt.NDArray[np.float64],
    t: float,
    *,
    step: float,
    wrap: bool,
    closing: bool = False,
) -> npt.NDArray[np.float64]:
    """Every row of `matrix` (one trace per row, K+1 points) at time `t`.

    The points cover [0, K·step]; past the end the trace either starts again
    (`wrap`, period K·step) or keeps its last value; before 0 it keeps its first.
    `closing` asks for the value just before `t` where wrapping jumps back to the
    first point (the end of an interval that stops exactly at a period's end).
    """
    last = matrix.shape[1] - 1
    if last == 0:
        return matrix[:, 0].copy()
    position = max(t, 0.0) / step
    if wrap:
        wrapped = position % last
        position = float(last) if closing and position > 0 and wrapped == 0 else wrapped
    else:
        position = min(position, float(last))
    index = min(int(position), last - 1)
    fraction = position - index
    result: npt.NDArray[np.float64] = (
        matrix[:, index] * (1.0 - fraction) + matrix[:, index + 1] * fraction
    )
    return result


def load_day(trace_dir: Path, day: str) -> list[Trace]:
    """Every trace of `<trace_dir>/<day>.csv.gz`, in file order.

    Raises InvalidInput naming the file (and line, column) for a missing or unreadable
    file, a bad header, a short or long row, or a value that is not an integer 0..100.
    """
    path = trace_dir / f"{day}.csv.gz"
    source = str(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as stream:
            return _parse(csv.reader(stream), source)
    except FileNotFoundError as exc:
        raise InvalidInput(f"no trace file for day {day!r}", source=source) from exc
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"cannot read trace file: {exc}", source=source) from exc


def _parse(reader: Iterator[list[str]], source: str) -> list[Trace]:
    header = next(reader, None)
    if not header:
        raise InvalidInput("empty file, expected a header `vm,t0,t1,...`", source=source)
    expected = ["vm", *(f"t{k}" for k in range(len(header) - 1))]
    if len(header) < 2 or header != expected:
        raise InvalidInput(
            "bad header, expected `vm,t0,t1,...`", source=f"{source} line 1", field="header"
        )
    width = len(header) - 1
    traces: list[Trace] = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        where = f"{source} line {line}"
        if not row:
            continue
        if len(row) != width + 1:
            raise InvalidInput(f"expected {width} values, got {len(row) - 1}", source=where)
        name = row[0]
        if not name:
            raise InvalidInput("empty VM name", source=where, field="vm")
        if name in seen:
            raise InvalidInput(f"VM {name!r} appears twice", source=where, field="vm")
        seen.add(name)
        values = _quick_values(row, width)
        if values is not None:
            traces.append(Trace(name, values))
            continue
        values = np.empty(width + 1, dtype=np.float64)
        for k, text in enumerate(row[1:]):
            try:
                percent = int(text)
            except ValueError:
                raise InvalidInput(
                    f"not an integer: {text!r}", source=where, field=f"t{k}"
                ) from None
            if not 0 <= percent <= 100:
                raise InvalidInput(f"{percent} is outside 0..100", source=where, field=f"t{k}")
            values[k] = percent / 100.0
        values[width] = values[width - 1]
        traces.append(Trace(name, values))
    return traces


def _quick_values(row: list[str], width: int) -> npt.NDArray[np.float64] | None:
    """The row's values as `_parse` reads them one by one (int(), then / 100, the last
    repeated), for a row that is all valid; None for any other, so the slow reading
    names what is wrong. The same int() and the same division: the same floats."""
    try:
        percents = list(map(int, row[1:]))
    except ValueError:
        return None
    if min(percents) < 0 or max(percents) > 100:
        return None
    percents.append(percents[-1])
    values: npt.NDArray[np.float64] = np.array(percents, dtype=np.float64) / 100.0
    return values


def select_traces(
    traces: Sequence[Trace], count: int, how: Selection, *, source: str = "traces"
) -> list[Trace]:
    """`count` traces: the `busiest` (highest mean first, ties by name) or the
    first in name order (`sorted`, as CloudSim's examples use them)."""
    if count < 0:
        raise InvalidInput(f"cannot select {count} traces", source=source)
    if count > len(traces):
        raise InvalidInput(f"{count} traces asked, only {len(traces)} available", source=source)
    if how == "busiest":
        ranked = sorted(traces, key=lambda tr: (-tr.mean, tr.name))
    elif how == "sorted":
        ranked = sorted(traces, key=lambda tr: tr.name)
    else:
        raise InvalidInput(f"unknown selection {how!r} (busiest | sorted)", source=source)
    return ranked[:count]


class Workload:
    """The traces of every VM as one matrix, read at a time in one vector operation."""

    def __init__(
        self, traces: Sequence[Trace], *, step: float = TRACE_STEP_SECONDS, wrap: bool = True
    ) -> None:
        if step <= 0:
            raise ValueError(f"trace step must be positive, got {step}")
        lengths = {len(tr.values) for tr in traces}
        if len(lengths) > 1:
            raise InvalidInput(
                f"traces have different lengths {sorted(lengths)}", source="workload"
            )
        self.step = step
        self.wrap = wrap
        width = lengths.pop() if lengths else 2
        self._matrix = (
            np.vstack([tr.values for tr in traces])
            if traces
            else np.zeros((0, width), dtype=np.float64)
        )

    def __len__(self) -> int:
        return int(self._matrix.shape[0])

    def at(self, t: float, *, closing: bool = False) -> npt.NDArray[np.float64]:
        """Utilisation (0..1) of every trace `t` seconds after the start
        (`closing`: the limit from the left, see `interpolate`)."""
        return interpolate(self._matrix, t, step=self.step, wrap=self.wrap, closing=closing)

    def knots_between(self, start: float, end: float) -> list[float]:
        """Sample times strictly inside (start, end): where demand changes slope."""
        first = int(np.floor(max(start, 0.0) / self.step)) + 1
        knots: list[float] = []
        k = first
        while k * self.step < end:
            if k * self.step > start:
                knots.append(k * self.step)
            k += 1
        return knots


TRACE_DIR_ENV = "OPENDRS_TRACE_DIR"


def find_trace_dir(configured: Path | None) -> Path:
    """The PlanetLab traces: the configured folder, $OPENDRS_TRACE_DIR, or
    `shared/data/planetlab` beside this checkout (or the working directory)."""
    candidates: list[Path] = []
    if configured is not None:
        candidates.append(configured)
    elif os.environ.get(TRACE_DIR_ENV):
        candidates.append(Path(os.environ[TRACE_DIR_ENV]))
    else:
        for start in (Path.cwd(), Path(__file__).resolve()):
            for parent in (start, *start.parents):
                candidates.append(parent / "shared" / "data" / "planetlab")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise InvalidInput(
        "PlanetLab traces not found; set cloud.sim.trace_dir or $OPENDRS_TRACE_DIR",
        source="configuration",
        field="cloud.sim.trace_dir",
    )
