"""Assembles the ASGI app: routes, error handlers and the middleware list, outermost first."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from medvault.auth import AuthError
from medvault.core import MedVault
from medvault.guard.refusal import Refused
from medvault.guard.service import ServerGuard
from medvault.vault import VaultError
from medvault.web import (
    admin,
    adminpages,
    api,
    chartpages,
    charts,
    dashboard,
    duplicatepages,
    errors,
    exports,
    healthpages,
    pages,
    proposalpages,
    sharepages,
    shares,
    summaries,
)
from medvault.web import search as search_api
from medvault.web import versions as versions_api
from medvault.web.accesslog import AccessLog
from medvault.web.clientip import ClientIP
from medvault.web.gate import BanGate
from medvault.web.headers import SecurityHeaders


def create_app(medvault: MedVault, guard: ServerGuard | None = None) -> Starlette:
    settings = medvault.settings
    routes = [
        *api.routes,
        *admin.routes,
        *shares.routes,
        *summaries.routes,
        *search_api.routes,
        *versions_api.routes,
        *exports.routes,
        *charts.routes,
        *duplicatepages.routes,  # before pages: /records/duplicates is not a record id
        *pages.routes,
        *dashboard.routes,
        *adminpages.routes,
        *sharepages.routes,
        *chartpages.routes,
        *proposalpages.routes,
        *healthpages.routes,
        Mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static"),
    ]
    middleware = [Middleware(ClientIP, trusted_proxies=settings.trusted_proxies)]
    if guard is not None:
        middleware.append(Middleware(BanGate, is_banned=guard.is_banned))
    middleware += [
        Middleware(AccessLog, log_dir=settings.log_dir, listeners=[guard.on_access] if guard is not None else []),
        Middleware(SecurityHeaders),
    ]
    handlers = {exc: errors.handle for exc in (HTTPException, AuthError, VaultError, Refused, Exception)}
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)
    app.state.medvault = medvault
    app.state.guard = guard
    return app
