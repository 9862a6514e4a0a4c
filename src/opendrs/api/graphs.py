"""GET /v1/graphs/...: PNG or SVG pictures of round-robin history, for a host's
series (one meter of all its instances, or named columns) and for one
instance wherever it ran; the dashboard's host and instance pages embed them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from opendrs.domain.clock import Clock, WallClock
from opendrs.domain.errors import InvalidInput, NotFound
from opendrs.store.rrd.collection import HostArchives, split_series
from opendrs.store.rrd.graph import FORMATS, Curve, period_range, render, resolution_for, unit_for

Period = Literal["day", "week", "month", "year"]
Format = Literal["png", "svg"]


def graphs_router(archives: HostArchives, *, clock: Clock | None = None) -> APIRouter:
    """The graph routes over one directory of host round-robin files."""
    router = APIRouter(prefix="/v1/graphs", tags=["graphs"])
    now = (clock or WallClock()).now

    def window(period: Period, start: int | None, end: int | None) -> tuple[int, int]:
        default_start, default_end = period_range(period, now())
        last = default_end if end is None else end
        first = last - (default_end - default_start) if start is None else start
        if last <= first:
            raise InvalidInput(f"end {last} must be after start {first}", field="end")
        return first, last

    def picture(body: bytes, fmt: Format) -> Response:
        return Response(
            content=body, media_type=FORMATS[fmt], headers={"Cache-Control": "max-age=60"}
        )

    @router.get(
        "/hosts/{host}",
        response_class=Response,
        responses={200: {"content": {t: {} for t in FORMATS.values()}}},
        summary="History of a host's series: one meter of all its instances, or named columns",
    )
    def host_graph(
        host: str,
        meter: Annotated[str, Query(description="e.g. cpu_util; every column ending /meter")] = (
            "cpu_util"
        ),
        series: Annotated[list[str] | None, Query(description="explicit column names")] = None,
        period: Period = "day",
        start: int | None = None,
        end: int | None = None,
        format: Format = "png",
        width: Annotated[int, Query(ge=200, le=4000)] = 800,
        height: Annotated[int, Query(ge=120, le=3000)] = 300,
    ) -> Response:
        first, last = window(period, start, end)
        handle = archives.file(host)
        columns = (
            list(series) if series else [c for c in handle.columns if split_series(c)[1] == meter]
        )
        if not columns:
            raise NotFound("series", f"{host} {meter}")
        resolution = resolution_for(first, last, width)
        average = handle.fetch("AVERAGE", first, last, resolution, columns)
        maximum = handle.fetch("MAX", first, last, resolution, columns)
        same_grid = maximum.step == average.step and maximum.start == average.start
        curves = [
            Curve(
                _short(name) if not series else name,
                average.timestamps,
                average.values[:, i],
                maximum.values[:, i] if same_grid else None,
            )
            for i, name in enumerate(columns)
        ]
        title = f"{host}: {', '.join(series) if series else meter}"
        unit = unit_for(columns[0])
        body = render(
            curves, start=first, end=last, title=title, unit=unit, fmt=format, width=width,
            height=height,
        )  # fmt: skip
        return picture(body, format)

    @router.get(
        "/instances/{instance}",
        response_class=Response,
        responses={200: {"content": {t: {} for t in FORMATS.values()}}},
        summary="History of one instance's meter across every host it ran on",
    )
    def instance_graph(
        instance: str,
        meter: str = "cpu_util",
        period: Period = "day",
        start: int | None = None,
        end: int | None = None,
        format: Format = "png",
        width: Annotated[int, Query(ge=200, le=4000)] = 800,
        height: Annotated[int, Query(ge=120, le=3000)] = 300,
    ) -> Response:
        first, last = window(period, start, end)
        name = f"{instance}/{meter}"
        resolution = resolution_for(first, last, width)
        stamps, average = archives.history(name, "AVERAGE", first, last, resolution)
        max_stamps, maximum = archives.history(name, "MAX", first, last, resolution)
        curve = Curve(
            instance, stamps, average, maximum if len(max_stamps) == len(stamps) else None
        )
        body = render(
            [curve], start=first, end=last, title=f"{instance}: {meter}", unit=unit_for(name),
            fmt=format, width=width, height=height,
        )  # fmt: skip
        return picture(body, format)

    return router


def _short(name: str) -> str:
    """The legend of one meter's series: the entity, and the device if any."""
    entity, _, device = split_series(name)
    return f"{entity} {device}".strip()
