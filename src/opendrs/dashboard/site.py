"""Serving the dashboard from the package: the page at `/`, its script and style
under `/static/`; the page itself only talks to the v1 API."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

PACKAGE = "opendrs.dashboard"
STATIC_DIR = "static"


def index_html() -> str:
    return resources.files(PACKAGE).joinpath(STATIC_DIR, "index.html").read_text("utf-8")


def mount_dashboard(app: FastAPI) -> None:
    """Add the dashboard's routes to `app` (outside the OpenAPI schema)."""

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> HTMLResponse:
        # Re-read on each request: the page is small and an upgrade shows at once.
        return HTMLResponse(index_html(), headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(packages=[(PACKAGE, STATIC_DIR)]), name="static")
