"""Summaries API: a specialist sends a signed summary; the patient's inbox lists what specialists sent."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from medvault.mar.summaries import CATEGORY
from medvault.web.api import json_body
from medvault.web.clientip import client_ip
from medvault.web.security import check_csrf, require_session, vault_of


async def send(request: Request) -> Response:
    session = require_session(request, roles=("specialist",))
    check_csrf(request, session)
    data = await json_body(request, "patient", "markdown")
    medvault = vault_of(request)
    title = data.get("title") if isinstance(data.get("title"), str) else "Summary"
    record_id = medvault.summaries.send(
        session.user_id, session.keys, data["patient"], title, data["markdown"], medvault.settings.max_upload_bytes
    )
    medvault.audit.append("summary", session.user_id, record_id, client_ip(request.scope))
    return JSONResponse({"id": record_id}, 201)


async def inbox(request: Request) -> Response:
    session = require_session(request, roles=("patient",))
    medvault = vault_of(request)
    opened = [
        medvault.vault.open(rid, session.user_id, session.keys) for rid in medvault.summaries.inbox(session.user_id)
    ]
    return JSONResponse({"items": [r.as_json() for r in opened if r.metadata.get("category") == CATEGORY]})


routes = [
    Route("/api/v1/summaries", send, methods=["POST"]),
    Route("/api/v1/inbox", inbox),
]
