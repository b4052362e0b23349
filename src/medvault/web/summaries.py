"""Summaries API: a specialist sends a signed summary (Markdown, with checked citations, and its PDF); the
patient's inbox lists what specialists sent, each summary with the id of its PDF."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from medvault.web.api import json_body
from medvault.web.clientip import client_ip
from medvault.web.security import check_csrf, require_session, vault_of


async def send(request: Request) -> Response:
    session = require_session(request, roles=("specialist",))
    check_csrf(request, session)
    data = await json_body(request, "patient", "markdown")
    medvault = vault_of(request)
    title = data.get("title") if isinstance(data.get("title"), str) else "Summary"
    record_id, pdf_id = medvault.summaries.send(
        session.user_id,
        session.keys,
        data["patient"],
        title,
        data["markdown"],
        medvault.settings.max_upload_bytes,
        data.get("citations"),
    )
    for rid in (record_id, pdf_id):
        medvault.audit.append("summary", session.user_id, rid, client_ip(request.scope))
    return JSONResponse({"id": record_id, "pdf": pdf_id}, 201)


async def inbox(request: Request) -> Response:
    session = require_session(request, roles=("patient",))
    return JSONResponse({"items": vault_of(request).summaries.received(session.user_id, session.keys)})


routes = [
    Route("/api/v1/summaries", send, methods=["POST"]),
    Route("/api/v1/inbox", inbox),
]
