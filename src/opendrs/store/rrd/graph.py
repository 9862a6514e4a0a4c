"""Pictures of round-robin history (matplotlib, Agg, no display): PNG or SVG of
one or several series over the last day/week/month/year or any range, the
AVERAGE as a filled area and the MAX as a line over it, with dated time axis
and SI-prefixed units."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from opendrs.domain.errors import InvalidInput

PERIODS = {"day": 86400, "week": 7 * 86400, "month": 31 * 86400, "year": 366 * 86400}
FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


@dataclass(frozen=True, slots=True)
class Curve:
    """One series: rows at `timestamps` (each the end of its step)."""

    label: str
    timestamps: npt.NDArray[np.int64]
    average: npt.NDArray[np.float64]
    maximum: npt.NDArray[np.float64] | None = None


def unit_for(name: str) -> str:
    """The unit of a stored series from its meter (Ceilometer names); counters
    are stored as rates."""
    parts = name.split("/", 2)
    meter = parts[1] if len(parts) > 1 else name
    if meter.endswith(("util", "percent")):
        return "%"
    if meter.endswith((".bytes", ".bytes.rate")) or meter in ("rx", "tx", "rd", "wr"):
        return "B/s"
    if meter == "cpu":
        return "ns/s"
    if meter.startswith("memory") or meter.endswith("_mb"):
        return "MB"
    if meter == "power":
        return "W"
    return ""


def period_range(period: str, now: float) -> tuple[int, int]:
    if period not in PERIODS:
        raise InvalidInput(f"period {period!r} is not one of {', '.join(PERIODS)}", field="period")
    end = int(now)
    return end - PERIODS[period], end


def render(
    curves: Sequence[Curve],
    *,
    start: int,
    end: int,
    title: str,
    unit: str = "",
    fmt: str = "png",
    width: int = 800,
    height: int = 300,
) -> bytes:
    """The picture as bytes in `fmt` (png or svg), `width` x `height` pixels."""
    if fmt not in FORMATS:
        raise InvalidInput(f"format {fmt!r} is not one of {', '.join(FORMATS)}", field="format")
    if not 200 <= width <= 4000 or not 120 <= height <= 3000:
        raise InvalidInput("width must be 200-4000 and height 120-3000 pixels", field="size")
    if end <= start:
        raise InvalidInput(f"end {end} must be after start {start}", field="end")
    # imported here: matplotlib is heavy and only graphs need it
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import dates as mdates
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    dpi = 100
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, layout="constrained")
    axes = figure.add_subplot()
    known_any = False
    for index, curve in enumerate(curves):
        colour = _PALETTE[index % len(_PALETTE)]
        # each row covers the step before its timestamp: draw it as a step
        when = _days(curve.timestamps)
        average = np.asarray(curve.average, dtype=float)
        known_any = known_any or bool(np.isfinite(average).any())
        axes.fill_between(
            when, average, step="pre", alpha=0.45, color=colour, linewidth=0, antialiased=False,
            label=f"{curve.label} average",
        )  # fmt: skip
        if curve.maximum is not None:
            maximum = np.asarray(curve.maximum, dtype=float)
            known_any = known_any or bool(np.isfinite(maximum).any())
            axes.step(
                when, maximum, where="pre", color=colour, linewidth=1.0,
                label=f"{curve.label} max",
            )  # fmt: skip
    axes.set_xlim(float(_days([start])[0]), float(_days([end])[0]))
    if unit == "%":
        axes.set_ylim(0, 100)
        axes.yaxis.set_major_formatter(lambda v, _: f"{v:g} %")
    elif unit == "MB":
        # Ceilometer's MB are binary megabytes; SI prefixes on top read as "20 kMB".
        axes.set_ylim(bottom=0 if _non_negative(curves) else None)
        axes.yaxis.set_major_formatter(
            lambda v, _: f"{v / 1024:.3g} GiB" if abs(v) >= 1024 else f"{v:.4g} MiB"
        )
    else:
        axes.set_ylim(bottom=0 if _non_negative(curves) else None)
        axes.yaxis.set_major_formatter(EngFormatter(unit=unit, places=None, sep=" "))
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    )
    axes.grid(True, which="major", linestyle=":", linewidth=0.6, color="#999999")
    axes.set_title(f"{title}  (UTC)", fontsize=11, loc="left")
    axes.set_ylabel(unit or "value")
    if not known_any:
        axes.text(
            0.5, 0.5, "no data in this range", transform=axes.transAxes, ha="center",
            va="center", color="#777777",
        )  # fmt: skip
    elif curves:
        figure.legend(
            loc="outside lower center", fontsize=8, ncols=min(6, 2 * len(curves)), frameon=False
        )
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, metadata=_metadata(fmt))
    return buffer.getvalue()


def _metadata(fmt: str) -> dict[str, str | None]:
    # no creation date in SVG: the same data gives the same bytes
    return {"Date": None} if fmt == "svg" else {}


def _days(timestamps: Sequence[int] | npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """matplotlib date numbers (days since its default epoch, 1970-01-01 UTC)."""
    return np.asarray(timestamps, dtype=np.float64) / 86400.0


def _non_negative(curves: Sequence[Curve]) -> bool:
    lowest = math.inf
    for curve in curves:
        for values in (curve.average, curve.maximum):
            if values is not None and np.isfinite(values).any():
                lowest = min(lowest, float(np.nanmin(values)))
    return lowest >= 0 or lowest == math.inf


def resolution_for(start: int, end: int, width: int) -> int:
    """About one row per pixel, as rrdtool graph asks fetch for."""
    return max(1, (end - start) // max(1, width))
