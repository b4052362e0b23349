"""Server-rendered pages (Jinja2). Forms post back here; every state-changing form carries a CSRF token,
and the login form is also guarded against cross-site posts by Origin/Sec-Fetch-Site."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from medvault.auth import AuthError, InvalidCredentials
from medvault.guard.refusal import Refused
from medvault.web.api import store_upload
from medvault.web.clientip import client_ip
from medvault.web.content import content_response
from medvault.web.login import log_in
from medvault.web.security import (
    check_csrf,
    check_same_origin,
    clear_session_cookie,
    current_session,
    issue_device_cookie,
    record_id_param,
    set_session_cookie,
    vault_of,
)

_env = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=select_autoescape(default=True)
)
FORM_LIMIT = 16 * 1024


def render(request: Request, name: str, status_code: int = 200, headers: dict | None = None, **context) -> HTMLResponse:
    session = current_session(request)
    html = _env.get_template(name).render(request=request, session=session, **context)
    return HTMLResponse(html, status_code, headers=headers)


def render_error(request: Request, status: int, detail: str, headers: dict | None = None) -> HTMLResponse:
    return render(request, "error.html", status, headers, status=status, detail=detail)


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > FORM_LIMIT:
        raise HTTPException(413, "Form too large")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _signed_in(request: Request):
    session = current_session(request)
    if session is None:
        raise HTTPException(401, "Please sign in")
    return session


def start_page(role: str) -> str:
    return "/admin" if role == "admin" else "/records"


async def home(request: Request) -> Response:
    session = current_session(request)
    return RedirectResponse(start_page(session.role) if session else "/login", 303)


async def login_page(request: Request) -> Response:
    if request.method == "GET":
        return render(request, "login.html")
    check_same_origin(request)
    form = await _form(request)
    username = form.get("username", "")
    try:
        result = await log_in(request, username, form.get("password", ""), via="form")
    except InvalidCredentials as exc:
        return render(request, "login.html", error=str(exc), username=username)
    except Refused as exc:
        headers = {"retry-after": str(exc.retry_after)} if exc.retry_after else None
        return render(request, "login.html", exc.status, headers, error=str(exc), username=username)
    response = RedirectResponse(start_page(result.account.role), 303)
    set_session_cookie(response, result.cookie)
    issue_device_cookie(request, response, result.account.username)
    return response


async def logout_page(request: Request) -> Response:
    session = _signed_in(request)
    check_csrf(request, session, (await _form(request)).get("csrf_token"))
    vault_of(request).sessions.revoke(session.id)
    response = RedirectResponse("/login", 303)
    clear_session_cookie(response)
    return response


async def invite_page(request: Request) -> Response:
    code = request.path_params["code"]
    if request.method == "GET":
        return render(request, "invite.html", code=code)
    check_same_origin(request)
    form = await _form(request)
    if form.get("password") != form.get("confirm"):
        return render(request, "invite.html", code=code, error="The two passwords differ")
    try:
        account, recovery = await vault_of(request).accounts.accept(code, form.get("password", ""))
    except AuthError as exc:
        return render(request, "invite.html", 400, code=code, error=str(exc))
    vault_of(request).events.emit("invitation-accepted", client_ip(request.scope), user=account.username)
    return render(request, "invite_done.html", account=account, recovery_key=recovery)


async def records_page(request: Request) -> Response:
    session = _signed_in(request)
    medvault = vault_of(request)
    ids = medvault.vault.readable_ids(session.user_id, 200, None)
    items = [medvault.vault.open(rid, session.user_id, session.keys).as_json() for rid, _ in ids]
    return render(request, "records.html", items=items, limit=medvault.settings.max_upload_bytes)


async def record_page(request: Request) -> Response:
    session = _signed_in(request)
    medvault = vault_of(request)
    record = medvault.vault.open(record_id_param(request), session.user_id, session.keys)
    medvault.audit.append("view", session.user_id, record.id, client_ip(request.scope))
    return render(request, "record.html", record=record.as_json())


async def record_file(request: Request) -> Response:
    session = _signed_in(request)
    medvault = vault_of(request)
    record = medvault.vault.open(record_id_param(request), session.user_id, session.keys)
    inline = request.url.path.endswith("/preview")
    medvault.audit.append("preview" if inline else "download", session.user_id, record.id, client_ip(request.scope))
    return content_response(request, medvault.vault, record, inline=inline)


async def record_delete_page(request: Request) -> Response:
    session = _signed_in(request)
    check_csrf(request, session, (await _form(request)).get("csrf_token"))
    medvault = vault_of(request)
    record_id = record_id_param(request)
    medvault.vault.delete(record_id, session.user_id)
    medvault.audit.append("delete", session.user_id, record_id, client_ip(request.scope))
    return RedirectResponse("/records", 303)


async def record_upload_page(request: Request) -> Response:
    """No-JavaScript upload: the form's csrf_token field precedes the file and is checked before it."""
    session = _signed_in(request)
    record_id = await store_upload(
        request, session, lambda fields: check_csrf(request, session, fields.get("csrf_token", ""))
    )
    return RedirectResponse(f"/records/{record_id}", 303)


async def account_page(request: Request) -> Response:
    session = _signed_in(request)
    medvault = vault_of(request)
    return render(
        request,
        "account.html",
        fingerprint=session.keys.public().fingerprint,
        sessions=medvault.sessions.list(session.user_id),
    )


routes = [
    Route("/", home),
    Route("/login", login_page, methods=["GET", "POST"]),
    Route("/logout", logout_page, methods=["POST"]),
    Route("/invite/{code}", invite_page, methods=["GET", "POST"]),
    Route("/records", records_page),
    Route("/records/upload", record_upload_page, methods=["POST"]),
    Route("/records/{id}", record_page),
    Route("/records/{id}/download", record_file),
    Route("/records/{id}/preview", record_file),
    Route("/records/{id}/delete", record_delete_page, methods=["POST"]),
    Route("/account", account_page),
]
