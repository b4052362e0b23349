"""Every error becomes a clear answer: JSON `{"detail"}` under /api, a friendly page elsewhere.

Domain errors map to status codes here, in one place; unexpected ones are logged server-side and the
client sees a generic message, never a stack trace.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from medvault.auth import AuthError, InvalidCredentials, LoginBusy
from medvault.guard.refusal import Refused
from medvault.vault import IntegrityError, RecordNotFound, TooLarge, VaultError
from medvault.web.accesslog import loggable_target
from medvault.web.pages import render_error

log = logging.getLogger("medvault")


def _status(exc: Exception) -> int:
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, Refused):
        return exc.status
    if isinstance(exc, InvalidCredentials):
        return 401
    if isinstance(exc, LoginBusy):
        return 503
    if isinstance(exc, RecordNotFound):
        return 404
    if isinstance(exc, IntegrityError):
        return 500
    if isinstance(exc, AuthError | VaultError):
        return 413 if isinstance(exc, TooLarge) else 400
    return 500


def _detail(exc: Exception, status: int) -> str:
    if isinstance(exc, HTTPException):
        return str(exc.detail)
    if isinstance(exc, AuthError | VaultError | Refused):
        return str(exc)
    return "Internal server error"


async def handle(request: Request, exc: Exception) -> Response:
    status = _status(exc)
    if status >= 500 and not isinstance(exc, IntegrityError | LoginBusy):
        log.error("unhandled error on %s %s", request.method, loggable_target(request.scope), exc_info=exc)
    detail = _detail(exc, status)
    headers = {}
    if isinstance(exc, Refused) and exc.retry_after:
        headers["retry-after"] = str(exc.retry_after)
    if isinstance(exc, LoginBusy):
        headers["retry-after"] = "2"
    if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"detail": detail}, status, headers=headers)
    return render_error(request, status, detail, headers)
