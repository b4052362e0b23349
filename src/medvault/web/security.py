"""Request-level checks shared by the API and the pages: session lookup, CSRF, cross-site posts, cookies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import uuid

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from medvault.auth.sessions import COOKIE, Session
from medvault.core import MedVault

DEVICE_COOKIE = "mv_device"
_SAFE_SITES = {"same-origin", "none"}


def vault_of(request: Request) -> MedVault:
    return request.app.state.medvault


def current_session(request: Request) -> Session | None:
    if "session" not in request.scope.setdefault("medvault.cache", {}):
        request.scope["medvault.cache"]["session"] = vault_of(request).sessions.resolve(request.cookies.get(COOKIE))
    return request.scope["medvault.cache"]["session"]


def require_session(request: Request, roles: tuple[str, ...] | None = None) -> Session:
    session = current_session(request)
    if session is None:
        raise HTTPException(401, "Not signed in")
    if roles and session.role not in roles:
        raise HTTPException(403, "Your role does not allow this")
    return session


def check_csrf(request: Request, session: Session, presented: str | None = None) -> None:
    token = presented if presented is not None else request.headers.get("x-csrf-token")
    if not vault_of(request).sessions.csrf_ok(session, token):
        raise HTTPException(403, "Missing or invalid CSRF token")


def check_same_origin(request: Request) -> None:
    """Refuse cross-site posts by Sec-Fetch-Site and Origin (a browser cannot forge them; a CLI sends none)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in _SAFE_SITES:
        raise HTTPException(403, "Cross-site request refused")
    origin = request.headers.get("origin")
    if origin == "null" and site == "same-origin":
        return  # Referrer-Policy: no-referrer makes browsers send `Origin: null` on their own forms
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise HTTPException(403, "Cross-site request refused")


def set_session_cookie(response: Response, value: str) -> None:
    response.set_cookie(COOKIE, value, httponly=True, secure=True, samesite="strict", path="/")


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")


def _device_mac(secret: bytes, username: str, nonce: str) -> str:
    mac = hmac.new(secret, f"medvault/device/v1:{username}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def issue_device_cookie(request: Request, response: Response, username: str) -> None:
    """OWASP device cookie: proves this browser logged in to `username` before (kept for a year)."""
    nonce = base64.urlsafe_b64encode(os.urandom(12)).decode()  # 12 bytes: no padding, so no cookie quoting
    mac = _device_mac(vault_of(request).server_secret, username, nonce)
    value = f"{username.encode().hex()}.{nonce}.{mac}"
    response.set_cookie(DEVICE_COOKIE, value, max_age=365 * 86400, httponly=True, secure=True, samesite="strict")


def device_user(request: Request) -> str | None:
    """The user name this browser's device cookie vouches for, or None."""
    value = request.cookies.get(DEVICE_COOKIE, "")
    try:
        user_hex, nonce, mac = value.split(".")
        username = bytes.fromhex(user_hex).decode()
    except ValueError:
        return None
    expected = _device_mac(vault_of(request).server_secret, username, nonce)
    return username if hmac.compare_digest(expected, mac) else None


def record_id_param(request: Request) -> str:
    """The `{id}` path parameter as a canonical UUID; anything else is simply not found."""
    try:
        return str(uuid.UUID(request.path_params["id"]))
    except ValueError:
        raise HTTPException(404, "Record not found") from None
