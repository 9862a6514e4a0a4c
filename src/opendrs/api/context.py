"""What every route receives from the app: the repositories and the status provider,
kept on `app.state` by create_app and handed out as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Protocol, cast

from fastapi import Depends, Request

from opendrs.domain.ports import (
    AlarmRepository,
    AuditRepository,
    ClusterRepository,
    EvacuationRepository,
    PlanRepository,
)

StatusProvider = Callable[[], Mapping[str, Any]]


class Repositories(
    ClusterRepository,
    AlarmRepository,
    AuditRepository,
    PlanRepository,
    EvacuationRepository,
    Protocol,
):
    """All the repository ports in one object, as the SQL store and the fakes offer them."""


def repositories(request: Request) -> Repositories:
    return cast(Repositories, request.app.state.repositories)


def status_provider(request: Request) -> StatusProvider | None:
    return cast(StatusProvider | None, request.app.state.status_provider)


Repos = Annotated[Repositories, Depends(repositories)]
Status = Annotated[StatusProvider | None, Depends(status_provider)]
