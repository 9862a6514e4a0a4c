"""/v1/evacuations: the evacuation marks (which instance a host_maintenance
evacuation moved off which host), listed, and cleared one instance at a time when
an operator knows better than the ledger (the instance came back by other means,
or should not go back)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from opendrs.api.context import Repos
from opendrs.api.errors import ERROR_RESPONSES, error_response
from opendrs.api.query import reject_unknown_query
from opendrs.api.schemas import EvacuationMarkOut

router = APIRouter(
    prefix="/v1/evacuations",
    tags=["evacuations"],
    responses=ERROR_RESPONSES,
    dependencies=[Depends(reject_unknown_query)],
)


HostFilter = Annotated[
    str | None,
    Query(min_length=1, description="only the instances evacuated from this host"),
]


@router.get("", response_model=list[EvacuationMarkOut], summary="Evacuation marks, by instance")
def list_evacuations(repos: Repos, host: HostFilter = None) -> list[EvacuationMarkOut]:
    found = repos.list_evacuations(host=host)
    if host is not None and not found:
        # An unknown host is a mistake worth naming; a host that has left the
        # model but still has marks is listed all the same.
        repos.get_host(host)
    return [EvacuationMarkOut.of(m) for m in found]


@router.delete(
    "/{instance:path}",
    response_model=EvacuationMarkOut,
    summary="Clear an instance's evacuation mark (only if it names `host`, when given); "
    "answers the mark cleared",
)
def clear_evacuation(
    instance: str,
    repos: Repos,
    host: Annotated[
        str | None, Query(min_length=1, description="clear it only if it names this host")
    ] = None,
) -> Any:
    found = next((m for m in repos.list_evacuations() if m.instance == instance), None)
    if found is None:
        return error_response(404, f"instance {instance!r} has no evacuation mark", "instance")
    if host is not None and found.host != host:
        return error_response(
            404,
            f"instance {instance!r} has no evacuation mark from host {host!r} "
            f"(its mark names host {found.host!r}); nothing cleared",
            "host",
        )
    if repos.clear_evacuations([instance], host=found.host) == 0:
        # Cleared meanwhile (the instance came home or was deleted).
        return error_response(404, f"instance {instance!r} has no evacuation mark", "instance")
    return EvacuationMarkOut.of(found)
