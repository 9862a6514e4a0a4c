"""The API's app factory: the v1 routers over the given repositories, the error
translation, the dashboard at `/`, and any extra routers another part brings."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, FastAPI

from opendrs import __version__
from opendrs.api.context import Repositories, StatusProvider
from opendrs.api.errors import install_error_handlers
from opendrs.api.routes import alarms, audits, evacuations, hosts, instances, plans, system
from opendrs.dashboard.site import mount_dashboard
from opendrs.domain.clock import Clock, WallClock

V1_ROUTERS = (
    hosts.router,
    instances.router,
    alarms.router,
    audits.router,
    plans.router,
    evacuations.router,
    system.router,
)


def create_app(
    repos: Repositories,
    *,
    title: str = "opendrs",
    status: StatusProvider | None = None,
    extra_routers: Iterable[APIRouter] = (),
    dashboard: bool = True,
    clock: Clock | None = None,
) -> FastAPI:
    """Build the app. `status()` feeds GET /v1/status (simulated time, step,
    counters...); `extra_routers` are included as they are (their own prefixes);
    `clock` stamps and schedules what the API creates (the demo's is simulated)."""
    app = FastAPI(
        title=title,
        version=__version__,
        description="opendrs: dynamic resource scheduling for KVM and OpenStack clouds.",
    )
    app.state.repositories = repos
    app.state.status_provider = status
    app.state.clock = clock or WallClock()
    install_error_handlers(app)
    for router in (*V1_ROUTERS, *extra_routers):
        app.include_router(router)
    if dashboard:
        mount_dashboard(app)
    return app
