"""GET /metrics: the latest value of every series in the round-robin history,
in the OpenMetrics 1.0 text format (or Prometheus text 0.0.4 for scrapers
that do not ask for OpenMetrics). Counters are exposed as the rates the
archives store, so every family is a gauge; labels are host, entity and device
(series `entity/meter[/device]`)."""

from __future__ import annotations

import math
import re
from collections import defaultdict

from fastapi import APIRouter, Request, Response

from opendrs.domain.clock import Clock, WallClock
from opendrs.store.rrd.collection import HostArchives, split_series
from opendrs.store.rrd.definition import SourceType

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "opendrs_"
_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(meter: str, source_type: SourceType) -> str:
    """`network.incoming.bytes` (a counter, stored as a rate) →
    `opendrs_network_incoming_bytes_per_second`."""
    name = PREFIX + _INVALID.sub("_", meter).strip("_")
    if source_type is not SourceType.GAUGE and not name.endswith("_rate"):
        name += "_per_second"
    return name


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else ("+Inf" if value > 0 else "-Inf")


def exposition(archives: HostArchives, *, openmetrics: bool, now: float, stale_after: float) -> str:
    """The text of one scrape: one family per meter, one sample per series;
    hosts whose last row is older than `stale_after` seconds are left out (a
    host that stopped reporting must not look alive)."""
    families: dict[str, list[str]] = defaultdict(list)
    for host in archives.hosts():
        handle = archives.file(host)
        kinds = {source.name: source.type for source in handle.sources()}
        if not kinds:
            continue
        when, values = handle.latest()
        if when < now - stale_after:
            continue
        stamp = str(when) if openmetrics else str(when * 1000)
        for column, value in values.items():
            if math.isnan(value):
                continue
            entity, meter, device = split_series(column)
            labels = f'host="{_label(host)}"'
            if entity:
                labels += f',entity="{_label(entity)}"'
            if device:
                labels += f',device="{_label(device)}"'
            name = metric_name(meter, kinds[column])
            families[name].append(f"{name}{{{labels}}} {_number(value)} {stamp}")
    lines: list[str] = []
    for name in sorted(families):
        lines.append(f"# TYPE {name} gauge")
        lines.extend(families[name])
    if openmetrics:
        lines.append("# EOF")
    return "\n".join(lines) + "\n"


def metrics_router(
    archives: HostArchives, *, clock: Clock | None = None, stale_after: float | None = None
) -> APIRouter:
    """`stale_after` defaults to three steps of the archives."""
    router = APIRouter(tags=["metrics"])
    now = (clock or WallClock()).now
    window = 3 * archives.step if stale_after is None else stale_after

    @router.get("/metrics", response_class=Response, summary="Latest values, OpenMetrics")
    def metrics(request: Request) -> Response:
        openmetrics = "application/openmetrics-text" in request.headers.get("accept", "")
        body = exposition(archives, openmetrics=openmetrics, now=now(), stale_after=window)
        return Response(content=body, media_type=OPENMETRICS if openmetrics else PROMETHEUS)

    return router
