"""Server-rendered pages (Jinja2). Forms post back here; every state-changing form carries a CSRF token,
and the login form is also guarded against cross-site posts by Origin/Sec-Fetch-Site."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qsl

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from medvault.auth import AuthError, InvalidCredentials, LoginBusy
from medvault.guard.refusal import Refused
from medvault.mar.identity import as_written
from medvault.vault import VaultError
from medvault.web.api import store_upload
from medvault.web.clientip import client_ip
from medvault.web.content import content_response
from medvault.web.entryview import card, chart_base, notes_on_record
from medvault.web.login import log_in, recover_with_key
from medvault.web.search import identities
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
from medvault.web.versions import edit_metadata

_env = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=select_autoescape(default=True)
)
_env.filters["timestamp"] = lambda t: time.strftime("%Y-%m-%d %H:%M", time.gmtime(float(t or 0)))
FORM_LIMIT = 16 * 1024
TEXT_PREVIEW_LIMIT = 64 * 1024  # text records show their first 64 KiB on the record page
TEXT_PREVIEW_TYPES = ("text/plain", "text/markdown")  # Markdown too is shown as plain, escaped text


def render(request: Request, name: str, status_code: int = 200, headers: dict | None = None, **context) -> HTMLResponse:
    session = current_session(request)
    html = _env.get_template(name).render(request=request, session=session, **context)
    return HTMLResponse(html, status_code, headers=headers)


def render_error(request: Request, status: int, detail: str, headers: dict | None = None) -> HTMLResponse:
    return render(request, "error.html", status, headers, status=status, detail=detail)


async def form_of(request: Request) -> dict[str, str]:
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
    """Where each role lands after signing in: what they come for most."""
    return {"admin": "/admin", "specialist": "/patients"}.get(role, "/dashboard")


async def home(request: Request) -> Response:
    session = current_session(request)
    return RedirectResponse(start_page(session.role) if session else "/login", 303)


def _refused(request: Request, template: str, exc: Refused, username: str) -> HTMLResponse:
    """The form again, with the guard's answer: its status, message and Retry-After."""
    headers = {"retry-after": str(exc.retry_after)} if exc.retry_after else None
    return render(
        request,
        template,
        exc.status,
        headers,
        error=str(exc),
        refused=exc.status,
        retry_after=exc.retry_after,
        username=username,
    )


async def login_page(request: Request) -> Response:
    if request.method == "GET":
        return render(request, "login.html")
    check_same_origin(request)
    form = await form_of(request)
    username = form.get("username", "")
    try:
        result = await log_in(request, username, form.get("password", ""), via="form")
    except InvalidCredentials as exc:
        return render(request, "login.html", error=str(exc), username=username)
    except Refused as exc:
        return _refused(request, "login.html", exc, username)
    except LoginBusy as exc:
        return render(request, "login.html", 503, {"retry-after": "2"}, error=str(exc), username=username)
    response = RedirectResponse(start_page(result.account.role), 303)
    set_session_cookie(response, result.cookie)
    issue_device_cookie(request, response, result.account.username)
    return response


async def _end_sessions(request: Request, everywhere: bool) -> Response:
    session = _signed_in(request)
    check_csrf(request, session, (await form_of(request)).get("csrf_token"))
    sessions = vault_of(request).sessions
    if everywhere:
        sessions.revoke_all(session.user_id)
    else:
        sessions.revoke(session.id)
    vault_of(request).search.sweep(force=True)  # the ended sessions' decrypted indexes leave memory now
    response = RedirectResponse("/login", 303)
    clear_session_cookie(response)
    return response


async def logout_page(request: Request) -> Response:
    return await _end_sessions(request, everywhere=False)


async def invite_page(request: Request) -> Response:
    code = request.path_params["code"]
    if request.method == "GET":
        return render(request, "invite.html", code=code)
    check_same_origin(request)
    form = await form_of(request)
    if form.get("password") != form.get("confirm"):
        return render(request, "invite.html", code=code, error="The two passwords differ")
    try:
        account, recovery = await vault_of(request).accounts.accept(code, form.get("password", ""))
    except AuthError as exc:
        return render(request, "invite.html", 400, code=code, error=str(exc))
    vault_of(request).events.emit("invitation-accepted", client_ip(request.scope), user=account.username)
    return render(request, "invite_done.html", account=account, recovery_key=recovery)


LIST_LIMIT = 200


def open_readable(request: Request, session) -> list:
    """Every record this user can read now, opened (newest grant first). One that fails to open (failing its
    integrity check, or deleted meanwhile) is left out, so it cannot take the whole list down; opening it says why."""
    medvault = vault_of(request)
    opened = []
    for rid, _ in medvault.vault.readable_ids(session.user_id, LIST_LIMIT, None):
        try:
            opened.append(medvault.vault.open(rid, session.user_id, session.keys))
        except VaultError:
            continue
    return opened


async def records_page(request: Request) -> Response:
    session = _signed_in(request)
    medvault = vault_of(request)
    opened = open_readable(request, session)
    items = medvault.vault.mark_superseded([{**r.as_json(), "mine": r.owner_id == session.user_id} for r in opened])
    return render(
        request,
        "records.html",
        items=items,
        limit=medvault.settings.max_upload_bytes,
        search={},
        sorts=SEARCH_SORTS,
        page_sizes=SEARCH_PAGE_SIZES,
    )


SEARCH_FIELDS = ("q", "similar", "facility", "provider", "type", "from", "to", "confidentiality")
SEARCH_GROUPS = ("facility", "provider", "type", "category")
SEARCH_SORTS = {
    "-uploaded": "Newest upload first",
    "uploaded": "Oldest upload first",
    "-service_date": "Newest date of service first",
    "service_date": "Oldest date of service first",
    "title": "Title (A–Z)",
    "facility": "Facility (A–Z)",
}
SEARCH_PAGE_SIZES = (10, 25, 50, 100)


def search_body(form: dict[str, str]) -> dict:
    """The search service's JSON body from the records page's filter form (empty fields are left out)."""
    body: dict = {}
    for key in SEARCH_FIELDS:
        value = form.get(key, "").strip()
        if value:
            body[key] = [value] if key == "confidentiality" else value
    if form.get("group") in SEARCH_GROUPS:
        body["group"] = form["group"]
    body["sort"] = form.get("sort") if form.get("sort") in SEARCH_SORTS else "-uploaded"
    if body.get("similar"):  # a search by meaning is ordered by it
        body["sort"] = "relevance"
    try:
        limit = int(form.get("limit", "25"))
    except ValueError:
        limit = 25
    body["limit"] = limit if limit in SEARCH_PAGE_SIZES else 25
    if form.get("cursor"):
        body["cursor"] = form["cursor"]
    return body


async def records_search_page(request: Request) -> Response:
    """The filter form posts here (no health detail in a URL); "Next page" posts the sealed cursor back."""
    session = _signed_in(request)
    form = await form_of(request)
    check_csrf(request, session, form.get("csrf_token"))
    medvault = vault_of(request)
    body = search_body(form)
    page = 1
    if body.get("cursor"):
        try:
            page = max(1, int(form.get("page", "1"))) + 1
        except ValueError:
            page = 2
    context = {"search": form, "sorts": SEARCH_SORTS, "page_sizes": SEARCH_PAGE_SIZES, "page": page}
    context["as_written"] = as_written
    try:
        who = identities(medvault.chart, session)
        result = await run_in_threadpool(medvault.search.search, session, body, who)
    except VaultError as exc:
        return render(request, "records_search.html", 400, error=str(exc), result=None, **context)
    return render(request, "records_search.html", result=result, **context)


EDITABLE = ("title", "description", "facility", "type", "category", "service_date", "document_date")
LISTED = ("provider", "tags")


async def record_edit_page(request: Request) -> Response:
    """Metadata editing from the record page: a new signed version; empty fields are removed."""
    session = _signed_in(request)
    form = await form_of(request)
    check_csrf(request, session, form.get("csrf_token"))
    changes: dict = {key: form.get(key, "").strip() or None for key in EDITABLE}
    for key in LISTED:
        items = [item.strip() for item in form.get(key, "").split(",") if item.strip()]
        changes[key] = items or None
    changes["confidentiality"] = form.get("confidentiality") or "normal"
    try:
        record_id, _ = await edit_metadata(request, session, changes)
    except VaultError as exc:
        return await record_page(request, error=str(exc), status_code=400)
    return RedirectResponse(f"/records/{record_id}", 303)


def text_preview(medvault, record) -> str | None:
    """A text record's first 64 KiB, shown as escaped text in the page itself: no frame, no script, nothing
    the file could run. None for other types (they preview in a sandboxed frame, or not at all)."""
    if record.metadata.get("content_type") not in TEXT_PREVIEW_TYPES:
        return None
    end = min(record.size, TEXT_PREVIEW_LIMIT)
    raw = b"".join(medvault.vault.read_range(record, 0, end)) if end else b""
    return raw.decode("utf-8", "replace")


def _cited_page(request: Request) -> int | None:
    """`?page=N` from a citation link: the PDF preview opens at that page."""
    page = request.query_params.get("page", "")
    return int(page) if page.isdigit() and 0 < int(page) < 100_000 else None


async def record_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
    session = _signed_in(request)
    medvault = vault_of(request)
    record = medvault.vault.open(record_id_param(request), session.user_id, session.keys)
    medvault.audit.append("view", session.user_id, record.id, client_ip(request.scope))
    desk, notes = await run_in_threadpool(notes_on_record, medvault.chart, session, record.id, record.owner_id)
    if desk is not None:  # the chart's notes were read, as the chart pages record it
        medvault.audit.append("chart-view", session.user_id, None, client_ip(request.scope))
    return render(
        request,
        "record.html",
        status_code,
        record=record.as_json(),
        text_preview=text_preview(medvault, record),
        mine=record.owner_id == session.user_id,
        edit_error=error,
        notes=[card(n) for n in notes],
        chart_base=chart_base(desk) if desk else None,
        cited_page=_cited_page(request),
        lineage=medvault.vault.lineage(record.id, session.user_id),
    )


async def record_file(request: Request) -> Response:
    session = _signed_in(request)
    medvault = vault_of(request)
    record = medvault.vault.open(record_id_param(request), session.user_id, session.keys)
    inline = request.url.path.endswith("/preview")
    medvault.audit.append("preview" if inline else "download", session.user_id, record.id, client_ip(request.scope))
    return content_response(request, medvault.vault, record, inline=inline)


async def record_delete_page(request: Request) -> Response:
    session = _signed_in(request)
    check_csrf(request, session, (await form_of(request)).get("csrf_token"))
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


def _account_page(request: Request, status_code: int = 200, **context) -> Response:
    session = _signed_in(request)
    medvault = vault_of(request)
    current = session.id.hex()[:16]
    sessions = [{**s, "current": s["id"] == current} for s in medvault.sessions.list(session.user_id)]
    return render(
        request,
        "account.html",
        status_code,
        fingerprint=session.keys.public().fingerprint,
        sessions=sessions,
        **context,
    )


async def account_page(request: Request) -> Response:
    return _account_page(request)


async def account_password_page(request: Request) -> Response:
    """Change the password: the current one is checked again; keys are re-wrapped, records untouched."""
    session = _signed_in(request)
    form = await form_of(request)
    check_csrf(request, session, form.get("csrf_token"))
    new = form.get("new_password", "")
    if new != form.get("confirm", ""):
        return _account_page(request, 400, error="The two new passwords differ")
    medvault = vault_of(request)
    try:
        await medvault.accounts.authenticate(session.username, form.get("current_password", ""))
    except InvalidCredentials:
        medvault.events.emit("password-change-failure", client_ip(request.scope), user=session.username)
        return _account_page(request, 400, error="Your current password is not right")
    try:
        await medvault.accounts.change_password(session.user_id, session.keys, new)
    except AuthError as exc:
        return _account_page(request, 400, error=str(exc))
    medvault.events.emit("password-changed", client_ip(request.scope), user=session.username)
    return _account_page(request, notice="Password changed. Use the new one next time you sign in.")


async def revoke_all_page(request: Request) -> Response:
    """Log out everywhere: every session of this user ends, this one included."""
    return await _end_sessions(request, everywhere=True)


async def recover_page(request: Request) -> Response:
    """Forgotten password: the recovery key resets it, keeps every record and is replaced by a new one."""
    if request.method == "GET":
        return render(request, "recover.html")
    check_same_origin(request)
    form = await form_of(request)
    username = form.get("username", "")
    if form.get("new_password") != form.get("confirm"):
        return render(request, "recover.html", 400, error="The two new passwords differ", username=username)
    try:
        fresh = await recover_with_key(request, username, form.get("recovery_key", ""), form.get("new_password", ""))
    except Refused as exc:
        return _refused(request, "recover.html", exc, username)
    except AuthError as exc:
        return render(request, "recover.html", 400, error=str(exc), username=username)
    return render(request, "recover_done.html", username=username, recovery_key=fresh)


routes = [
    Route("/", home),
    Route("/login", login_page, methods=["GET", "POST"]),
    Route("/logout", logout_page, methods=["POST"]),
    Route("/invite/{code}", invite_page, methods=["GET", "POST"]),
    Route("/records", records_page),
    Route("/records/upload", record_upload_page, methods=["POST"]),
    Route("/records/search", records_search_page, methods=["POST"]),
    Route("/records/{id}", record_page),
    Route("/records/{id}/download", record_file),
    Route("/records/{id}/preview", record_file),
    Route("/records/{id}/delete", record_delete_page, methods=["POST"]),
    Route("/records/{id}/edit", record_edit_page, methods=["POST"]),
    Route("/account", account_page),
    Route("/account/password", account_password_page, methods=["POST"]),
    Route("/account/revoke-all", revoke_all_page, methods=["POST"]),
    Route("/recover", recover_page, methods=["GET", "POST"]),
]
