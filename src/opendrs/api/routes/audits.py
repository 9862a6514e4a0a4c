"""GET /v1/audits and /v1/audits/{id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from opendrs.api.context import Repos
from opendrs.api.errors import ERROR_RESPONSES
from opendrs.api.query import reject_unknown_query
from opendrs.api.schemas import AuditOut

router = APIRouter(
    prefix="/v1/audits",
    tags=["audits"],
    responses=ERROR_RESPONSES,
    dependencies=[Depends(reject_unknown_query)],
)


@router.get("", response_model=list[AuditOut], summary="Audits, newest first")
def list_audits(
    repos: Repos,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many")] = 100,
) -> list[AuditOut]:
    return [AuditOut.of(a) for a in repos.list_audits(limit=limit)]


@router.get("/{audit_id}", response_model=AuditOut, summary="One audit by id")
def get_audit(audit_id: str, repos: Repos) -> AuditOut:
    return AuditOut.of(repos.get_audit(audit_id))
