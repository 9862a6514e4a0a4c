"""GET /v1/hosts and /v1/hosts/{name}: hypervisors with their derived CPU and RAM use."""

from __future__ import annotations

from collections import defaultdict

from fastapi import APIRouter, Depends

from opendrs.api.context import Repos
from opendrs.api.errors import ERROR_RESPONSES
from opendrs.api.query import reject_unknown_query
from opendrs.api.schemas import HostOut
from opendrs.domain.instance import Instance

router = APIRouter(
    prefix="/v1/hosts",
    tags=["hosts"],
    responses=ERROR_RESPONSES,
    dependencies=[Depends(reject_unknown_query)],
)


@router.get("", response_model=list[HostOut], summary="List hosts, sorted by name")
def list_hosts(repos: Repos) -> list[HostOut]:
    by_host: defaultdict[str, list[Instance]] = defaultdict(list)
    for instance in repos.list_instances():
        by_host[instance.host].append(instance)
    return [HostOut.of(h, by_host[h.name]) for h in repos.list_hosts()]


@router.get("/{name}", response_model=HostOut, summary="One host by name")
def get_host(name: str, repos: Repos) -> HostOut:
    host = repos.get_host(name)
    return HostOut.of(host, repos.list_instances(host=name))
