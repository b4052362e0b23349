"""Search API: filters travel in a JSON body, so no health detail lands in a URL or an access log."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from medvault.mar import professionals
from medvault.web.api import json_body
from medvault.web.security import check_csrf, require_session, vault_of


async def search(request: Request) -> Response:
    """Any reader searches what they can read; see mar/search.py for the filters and their meaning."""
    session = require_session(request, roles=("patient", "specialist"))
    check_csrf(request, session)  # no state changes, but a cross-site page must not make us do the work
    data = await json_body(request)
    medvault = vault_of(request)
    people = professionals.for_search(medvault.chart, session)
    result = await run_in_threadpool(medvault.search.search, session, data, people)
    return JSONResponse(result)


routes = [Route("/api/v1/records/search", search, methods=["POST"])]
