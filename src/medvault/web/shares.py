"""Sharing API: a patient shares records or the chart with a specialist and revokes; both see their shares;
a patient reads who saw their records."""

from __future__ import annotations

import time

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from medvault.mar.sharing import Scope
from medvault.vault.metadata import valid_date
from medvault.web.api import json_body
from medvault.web.clientip import client_ip
from medvault.web.security import check_csrf, require_session, vault_of


def _scope(data: dict) -> Scope | None:
    if not data.get("chart"):
        return None
    for key in ("from", "to"):
        if data.get(key) is not None and not valid_date(data[key]):
            raise HTTPException(400, f"{key!r} must be YYYY, YYYY-MM or YYYY-MM-DD")
    facility = data.get("facility")
    if facility is not None and not isinstance(facility, str):
        raise HTTPException(400, "'facility' must be text")
    return Scope(data.get("from"), data.get("to"), facility)


def _expiry(data: dict) -> float | None:
    days = data.get("expires_in_days")
    if days is None:
        return None
    if not isinstance(days, int | float) or not 0 < days <= 3650:
        raise HTTPException(400, "'expires_in_days' must be a number of days from 0 to 3650")
    return time.time() + days * 86400


async def create(request: Request) -> Response:
    session = require_session(request, roles=("patient",))
    check_csrf(request, session)
    data = await json_body(request, "specialist")
    ids = data.get("records")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or not ids):
        raise HTTPException(400, "'records' must be a non-empty list of record ids")
    share = vault_of(request).sharing.share(
        session.user_id,
        session.keys,
        data["specialist"],
        record_ids=ids,
        scope=_scope(data),
        access=data.get("access", "read"),
        expires_at=_expiry(data),
        ip=client_ip(request.scope),
    )
    return JSONResponse(share, 201)


async def listing(request: Request) -> Response:
    session = require_session(request, roles=("patient", "specialist"))
    return JSONResponse({"items": vault_of(request).sharing.list_for(session.user_id, session.role)})


async def revoke(request: Request) -> Response:
    session = require_session(request, roles=("patient",))
    check_csrf(request, session)
    vault_of(request).sharing.revoke(session.user_id, request.path_params["id"], client_ip(request.scope))
    return Response(status_code=204)


async def specialists(request: Request) -> Response:
    require_session(request, roles=("patient",))
    return JSONResponse({"items": vault_of(request).sharing.specialists()})


async def audit_trail(request: Request) -> Response:
    """Who saw my records: every access to records the patient owns, newest first."""
    session = require_session(request, roles=("patient",))
    trail = vault_of(request).audit
    head = trail.checkpoint(session.user_id, session.keys)  # what the patient saw, signed by the patient
    return JSONResponse({"items": trail.for_owner(session.user_id), "head": head})


routes = [
    Route("/api/v1/shares", create, methods=["POST"]),
    Route("/api/v1/shares", listing, methods=["GET"]),
    Route("/api/v1/shares/{id}", revoke, methods=["DELETE"]),
    Route("/api/v1/specialists", specialists),
    Route("/api/v1/audit", audit_trail),
]
