"""GET /v1/instances: the VMs, optionally those of one host."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from opendrs.api.context import Repos
from opendrs.api.errors import ERROR_RESPONSES
from opendrs.api.query import reject_unknown_query
from opendrs.api.schemas import InstanceOut

router = APIRouter(
    prefix="/v1/instances",
    tags=["instances"],
    responses=ERROR_RESPONSES,
    dependencies=[Depends(reject_unknown_query)],
)


@router.get("", response_model=list[InstanceOut], summary="List instances, sorted by name")
def list_instances(
    repos: Repos,
    host: Annotated[
        str | None, Query(min_length=1, description="only the instances on this host")
    ] = None,
) -> list[InstanceOut]:
    if host is not None:
        # An unknown host is a mistake worth naming, not an empty list.
        repos.get_host(host)
    return [InstanceOut.of(i) for i in repos.list_instances(host=host)]
