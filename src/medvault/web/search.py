"""Search API: filters travel in a JSON body, so no health detail lands in a URL or an access log."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from medvault.auth.sessions import Session
from medvault.mar import facilities, professionals
from medvault.mar.chart import Chart
from medvault.mar.search import People
from medvault.web.api import json_body
from medvault.web.security import check_csrf, require_session, vault_of


def identities(chart: Chart, session: Session) -> dict[str, People]:
    """Who is who for the search's provider and facility filters and groups, each record under its own chart."""
    return {"provider": professionals.for_search(chart, session), "facility": facilities.for_search(chart, session)}


async def search(request: Request) -> Response:
    """Any reader searches what they can read; see mar/search.py for the filters and their meaning."""
    session = require_session(request, roles=("patient", "specialist"))
    check_csrf(request, session)  # no state changes, but a cross-site page must not make us do the work
    data = await json_body(request)
    medvault = vault_of(request)
    who = identities(medvault.chart, session)
    result = await run_in_threadpool(medvault.search.search, session, data, who)
    return JSONResponse(result)


routes = [Route("/api/v1/records/search", search, methods=["POST"])]
