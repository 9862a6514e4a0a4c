"""GET /v1/status (what the running process reports about itself) and /healthz."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.encoders import jsonable_encoder

from opendrs.api.context import Status
from opendrs.api.query import reject_unknown_query
from opendrs.api.schemas import Health

router = APIRouter(tags=["system"], dependencies=[Depends(reject_unknown_query)])


@router.get(
    "/v1/status",
    response_model=dict[str, Any],
    summary="The process's own report: simulated time, step, counters; {} if it has none",
)
def get_status(status: Status) -> dict[str, Any]:
    if status is None:
        return {}
    return dict(jsonable_encoder(dict(status())))


@router.get("/healthz", response_model=Health, summary="Liveness: answers while the app runs")
def healthz() -> Health:
    return Health()
