"""Sharing pages: a patient shares records or the chart, revokes, reads who saw what and the summaries inbox;
a specialist sees who shared with them, that patient's shared records, and writes a summary back.

Every form posts a CSRF token and calls the same services as the JSON API. User-written Markdown is never
rendered as HTML: previews show it as escaped text.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from medvault.mar.sharing import Scope
from medvault.vault import VaultError
from medvault.vault.metadata import valid_date
from medvault.web.clientip import client_ip
from medvault.web.pages import LIST_LIMIT, form_of, open_readable, render
from medvault.web.security import check_csrf, require_session, vault_of

MAX_EXPIRY_DAYS = 3650
SHARE_FORM_LIMIT = 64 * 1024  # room for a few hundred record ids
CITATION_ROWS = 3  # citations a summary form offers; the API takes more


def _own_records(request: Request, session) -> list[dict]:
    return [r.as_json() for r in open_readable(request, session) if r.owner_id == session.user_id]


# --- patient: share -------------------------------------------------------------------------------------


def _share_form(request: Request, session, status_code: int = 200, **context) -> Response:
    return render(
        request,
        "share.html",
        status_code,
        specialists=vault_of(request).sharing.specialists(),
        records=_own_records(request, session),
        **context,
    )


def _parse_share(form: dict, selected: list[str]) -> dict:
    """The share's arguments from the form, or VaultError with a message for the person."""
    specialist = form.get("specialist", "")
    if not specialist:
        raise VaultError("Choose a specialist to share with")
    access = form.get("access", "read")
    scope = None
    records = None
    if form.get("what") == "chart":
        dates = {key: form.get(key, "").strip() or None for key in ("from", "to")}
        for key, value in dates.items():
            if value is not None and not valid_date(value):
                raise VaultError(f"The '{key}' date must be YYYY, YYYY-MM or YYYY-MM-DD")
        scope = Scope(dates["from"], dates["to"], form.get("facility", "").strip() or None)
    else:
        if not selected:
            raise VaultError("Choose at least one record, or share the whole chart")
        records = selected
    expires_at = None
    days = form.get("expires_in_days", "").strip()
    if days:
        try:
            number = float(days)
        except ValueError:
            number = -1
        if not 0 < number <= MAX_EXPIRY_DAYS:
            raise VaultError(f"The expiry must be a number of days from 1 to {MAX_EXPIRY_DAYS}, or empty")
        expires_at = time.time() + number * 86400
    return {"specialist": specialist, "record_ids": records, "scope": scope, "access": access, "expires_at": expires_at}


async def share_page(request: Request) -> Response:
    session = require_session(request, roles=("patient",))
    if request.method == "GET":
        selected = request.query_params.getlist("record")
        return _share_form(request, session, selected=selected, form={"what": "records", "access": "read"})
    body = await request.body()
    if len(body) > SHARE_FORM_LIMIT:
        raise HTTPException(413, "Form too large")
    pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    form = dict(pairs)
    selected = [value for key, value in pairs if key == "record"]
    check_csrf(request, session, form.get("csrf_token"))
    try:
        args = _parse_share(form, selected)
        made = vault_of(request).sharing.share(session.user_id, session.keys, ip=client_ip(request.scope), **args)
    except VaultError as exc:
        return _share_form(request, session, 400, error=str(exc), selected=selected, form=form)
    return _shares_page(request, session, notice=made)


# --- shares: the patient's, or those made to a specialist ------------------------------------------------


def _shares_page(request: Request, session, **context) -> Response:
    items = vault_of(request).sharing.list_for(session.user_id, session.role)
    template = "shares.html" if session.role == "patient" else "patients.html"
    return render(request, template, items=items, **context)


async def shares_page(request: Request) -> Response:
    session = require_session(request, roles=("patient", "specialist"))
    return _shares_page(request, session)


async def revoke_page(request: Request) -> Response:
    session = require_session(request, roles=("patient",))
    check_csrf(request, session, (await form_of(request)).get("csrf_token"))
    vault_of(request).sharing.revoke(session.user_id, request.path_params["id"], client_ip(request.scope))
    return RedirectResponse("/shares?revoked=1", 303)


# --- patient: who saw my records, inbox ---------------------------------------------------------------


async def audit_page(request: Request) -> Response:
    session = require_session(request, roles=("patient",))
    medvault = vault_of(request)
    return render(
        request, "audit.html", items=with_titles(medvault, session, medvault.audit.for_owner(session.user_id))
    )


def with_titles(medvault, session, items: list[dict]) -> list[dict]:
    """Audit rows with the title of their record (each record opened once) and whether the patient did it."""
    titles: dict[str, str | None] = {}
    rows = []
    for item in items:
        rid = item["record_id"]
        if rid not in titles:
            try:
                meta = medvault.vault.open(rid, session.user_id, session.keys).as_json()
                titles[rid] = meta.get("title") or meta.get("filename")
            except VaultError:
                titles[rid] = None  # deleted since, or no longer readable: shown by its id
        rows.append({**item, "title": titles[rid], "mine": item["who"] == session.username})
    return rows


async def inbox_page(request: Request) -> Response:
    session = require_session(request, roles=("patient",))
    items = vault_of(request).summaries.received(session.user_id, session.keys, LIST_LIMIT)
    return render(request, "inbox.html", items=items)


# --- specialist: a patient's shared records, and a summary back -----------------------------------------


def _patient_records(request: Request, session, username: str) -> list[dict]:
    medvault = vault_of(request)
    names: dict[str, str | None] = {}
    chosen = []
    for record in open_readable(request, session):
        if record.owner_id == session.user_id:
            continue
        if record.owner_id not in names:
            account = medvault.accounts.get(record.owner_id)
            names[record.owner_id] = account.username if account else None
        if names[record.owner_id] == username:
            chosen.append(record.as_json())
    return chosen


def _shared_by(request: Request, session, username: str) -> list[dict]:
    return [s for s in vault_of(request).sharing.list_for(session.user_id, "specialist") if s["with"] == username]


async def patient_page(request: Request) -> Response:
    session = require_session(request, roles=("specialist",))
    username = request.path_params["username"]
    shares = _shared_by(request, session, username)
    if not shares:
        raise HTTPException(404, "No patient of that name has shared records with you")
    records = _patient_records(request, session, username)
    sent = request.query_params.get("sent")
    return render(request, "patient.html", patient=username, shares=shares, records=records, sent=sent)


def _form_citations(form: dict) -> list[dict]:
    """The citations filled in on the summary form; a row without a record is left out."""
    cites = []
    for n in range(1, CITATION_ROWS + 1):
        if form.get(f"cite_record_{n}"):
            cite = {"record": form[f"cite_record_{n}"]}
            for field in ("pages", "quote"):
                value = form.get(f"cite_{field}_{n}", "").strip()
                if value:
                    cite[field] = value
            cites.append(cite)
    return cites


async def summary_page(request: Request) -> Response:
    session = require_session(request, roles=("specialist",))
    username = request.path_params["username"]
    live = [s for s in _shared_by(request, session, username) if not s["expired"]]
    if not live:
        raise HTTPException(404, "No patient of that name has a live share with you")
    records = _patient_records(request, session, username)
    posted = request.method == "POST"
    form = await form_of(request) if posted else {}
    if posted:
        check_csrf(request, session, form.get("csrf_token"))
    title, markdown = form.get("title", "").strip(), form.get("markdown", "")
    cites = _form_citations(form)
    rows = cites + [{}] * (CITATION_ROWS - len(cites))

    def page(status_code: int = 200, **context) -> Response:
        return render(
            request,
            "summary.html",
            status_code,
            patient=username,
            title=title,
            markdown=markdown,
            records=records,
            citations=rows,
            **context,
        )

    if form.get("action") != "send":
        return page(preview=markdown) if posted else page()
    medvault = vault_of(request)
    try:
        record_id, pdf_id = medvault.summaries.send(
            session.user_id, session.keys, username, title, markdown, medvault.settings.max_upload_bytes, cites
        )
    except VaultError as exc:
        return page(400, error=str(exc))
    for rid in (record_id, pdf_id):  # as the API does
        medvault.audit.append("summary", session.user_id, rid, client_ip(request.scope))
    return RedirectResponse(f"/patients/{username}?sent={record_id}", 303)


routes = [
    Route("/share", share_page, methods=["GET", "POST"]),
    Route("/shares", shares_page),
    Route("/shares/{id}/revoke", revoke_page, methods=["POST"]),
    Route("/audit", audit_page),
    Route("/inbox", inbox_page),
    Route("/patients", shares_page),
    Route("/patients/{username}", patient_page),
    Route("/patients/{username}/summary", summary_page, methods=["GET", "POST"]),
]
