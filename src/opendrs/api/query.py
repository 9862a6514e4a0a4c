"""Query-string checks FastAPI does not make: a parameter the route does not take
is refused by name, so `?al=true` is an error instead of a silently ignored typo."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError


def accepted_query_names(dependant: Any) -> set[str]:
    """The query parameter names of a route's dependant and its sub-dependencies."""
    names = {str(getattr(f, "alias", None) or f.name) for f in dependant.query_params}
    for sub in dependant.dependencies:
        names |= accepted_query_names(sub)
    return names


def reject_unknown_query(request: Request) -> None:
    """A router-level dependency; a route without a known dependant is not checked."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    accepted = accepted_query_names(dependant)
    unknown = sorted(set(request.query_params) - accepted)
    if unknown:
        takes = ", ".join(sorted(accepted)) if accepted else "none"
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": f"unknown parameter (this endpoint takes: {takes})",
                    "type": "unknown_parameter",
                    "input": request.query_params[name],
                }
                for name in unknown
            ]
        )
