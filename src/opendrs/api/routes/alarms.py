"""GET /v1/alarms (the current alarm states) and /v1/alarms/history (transitions)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from opendrs.api.context import Repos
from opendrs.api.errors import ERROR_RESPONSES
from opendrs.api.query import reject_unknown_query
from opendrs.api.schemas import AlarmOut, AlarmTransitionOut

router = APIRouter(
    prefix="/v1/alarms",
    tags=["alarms"],
    responses=ERROR_RESPONSES,
    dependencies=[Depends(reject_unknown_query)],
)


@router.get(
    "",
    response_model=list[AlarmOut],
    summary="Alarms not ok (pending, alarm, no_data); ?all=true adds the ok ones",
)
def list_alarms(
    repos: Repos,
    include_ok: Annotated[
        bool, Query(alias="all", description="include alarms in state ok")
    ] = False,
) -> list[AlarmOut]:
    alarms = repos.list_alarms(include_ok=include_ok)
    return [AlarmOut.of(a) for a in sorted(alarms, key=lambda a: (-a.since, a.key))]


@router.get(
    "/history", response_model=list[AlarmTransitionOut], summary="Alarm transitions, newest first"
)
def alarm_history(
    repos: Repos,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many")] = 100,
) -> list[AlarmTransitionOut]:
    return [AlarmTransitionOut.of(t) for t in repos.history(limit=limit)]
