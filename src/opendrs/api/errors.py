"""Translation of every error into one JSON shape, `{"error": {"message", "field"}}`:
domain errors get their HTTP status here, and FastAPI's validation errors are
reworded so that each names the parameter that is wrong and what was given."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from opendrs.api.schemas import ErrorBody, ErrorDetail, ErrorResponse
from opendrs.domain.errors import (
    DriverError,
    InvalidInput,
    InvalidTransition,
    NotFound,
    StoreError,
)

log = logging.getLogger(__name__)

_PLACES = {"query": "query parameter", "path": "path parameter", "header": "header"}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(InvalidInput, _on_invalid_input)
    app.add_exception_handler(NotFound, _on_not_found)
    app.add_exception_handler(InvalidTransition, _on_invalid_transition)
    app.add_exception_handler(DriverError, _on_driver_error)
    app.add_exception_handler(StoreError, _on_store_error)
    app.add_exception_handler(HTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)


def error_response(
    status: int,
    message: str,
    field: str | None = None,
    details: Sequence[ErrorDetail] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(message=message, field=field, details=list(details)))
    return JSONResponse(
        body.model_dump(mode="json"), status_code=status, headers=dict(headers or {})
    )


def describe_validation_error(error: Mapping[str, Any]) -> ErrorDetail:
    """`{"loc": ("query", "limit"), "msg": ...}` → "query parameter 'limit': ... (got 'x')"."""
    loc = list(error.get("loc", ()))
    place, path = (str(loc[0]), loc[1:]) if loc else ("request", [])
    name = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    field = ".".join(str(p) for p in path if not isinstance(p, int))
    label = _PLACES.get(place, "body field" if place == "body" else place)
    what = f"{label} {name!r}" if name else label
    message = f"{what}: {error.get('msg', 'is invalid')}"
    if error.get("type") != "missing" and "input" in error:
        message += f" (got {error['input']!r})"
    return ErrorDetail(message=message, field=field or None)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [describe_validation_error(e) for e in exc.errors()]
    if not details:
        return error_response(422, "the request is invalid")
    return error_response(422, "; ".join(d.message for d in details), details[0].field, details)


async def _on_invalid_input(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    return error_response(422, str(exc), exc.field or None)


async def _on_not_found(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NotFound)
    # Name the path (or query) parameter that carried the missing key, when there is one.
    params = {**request.query_params, **request.path_params}
    field = next((k for k, v in params.items() if v == exc.key), None)
    return error_response(404, str(exc), field)


async def _on_invalid_transition(request: Request, exc: Exception) -> JSONResponse:
    return error_response(409, str(exc))


async def _on_driver_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DriverError)
    return error_response(503 if exc.transient else 502, f"cloud driver: {exc}")


async def _on_store_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StoreError)
    log.warning("store error on %s %s: %s", request.method, request.url.path, exc)
    return error_response(503 if exc.transient else 500, f"store: {exc}")


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = str(exc.detail)
    if exc.status_code in (404, 405):
        message = f"{message}: {request.method} {request.url.path}"
    return error_response(exc.status_code, message, headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    # The text of an unexpected error may hold internals (a database URL): keep it in the log.
    return error_response(500, f"internal error ({type(exc).__name__}); see the server log")


# Documented on every v1 router so OpenAPI shows the real error body, not FastAPI's.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "the named thing does not exist"},
    422: {"model": ErrorResponse, "description": "a parameter or body field is invalid"},
}
