"""Administrator API: accounts and the guard. Administrators manage people and the server, never records."""

from __future__ import annotations

import ipaddress
import time

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from medvault.web.api import json_body
from medvault.web.security import check_csrf, require_session, vault_of


def _admin(request: Request, state_changing: bool = False):
    session = require_session(request, roles=("admin",))
    if state_changing:
        check_csrf(request, session)
    return session


def _guard(request: Request):
    guard = request.app.state.guard
    if guard is None:
        raise HTTPException(409, "The guard is disabled on this server")
    return guard


def _network(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise HTTPException(400, f"Not an IP address or network: {text[:64]!r}") from None


async def users(request: Request) -> Response:
    _admin(request)
    return JSONResponse({"items": [a.__dict__ for a in vault_of(request).accounts.list()]})


async def invite(request: Request) -> Response:
    _admin(request, state_changing=True)
    data = await json_body(request, "username", "role")
    medvault = vault_of(request)
    invitation = medvault.accounts.invite(data["username"], data["role"], data.get("profession"))
    return JSONResponse(
        {
            "username": invitation.username,
            "code": invitation.code,
            "link": f"{medvault.settings.https_url}/invite/{invitation.code}",
            "expires_at": invitation.expires_at,
        },
        201,
    )


async def guard_status(request: Request) -> Response:
    _admin(request)
    return JSONResponse(_guard(request).status())


async def ban(request: Request) -> Response:
    _admin(request, state_changing=True)
    data = await json_body(request, "ip")
    seconds = data.get("seconds", 3600)
    if not isinstance(seconds, int) or not 1 <= seconds <= 365 * 86400:
        raise HTTPException(400, "seconds must be a whole number from 1 to 31536000")
    _guard(request).ban(_network(data["ip"]), time.time() + seconds, "manual", reason="administrator")
    return JSONResponse({"detail": "Banned"}, 201)


async def unban(request: Request) -> Response:
    _admin(request, state_changing=True)
    data = await json_body(request, "ip")
    if not _guard(request).unban(_network(data["ip"])):
        raise HTTPException(404, "No such ban")
    return JSONResponse({"detail": "Ban lifted"})


routes = [
    Route("/api/v1/admin/users", users, methods=["GET"]),
    Route("/api/v1/admin/users", invite, methods=["POST"]),
    Route("/api/v1/admin/guard", guard_status),
    Route("/api/v1/admin/bans", ban, methods=["POST"]),
    Route("/api/v1/admin/bans/lift", unban, methods=["POST"]),
]
