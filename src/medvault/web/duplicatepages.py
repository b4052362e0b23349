"""Reviewing suggested duplicates: the suggestions of `POST /api/v1/records/duplicates` as a page, one pair side
by side (details and previews), and the owner's decision. Suggestions are never acted on by themselves.

"Keep both" is remembered (vault/reviews.py) so the pair is not suggested again. "Same document" (a patient's
own records: it is their chart's chronology that changes) keeps both records too, and the chronology then shows
the document once, citing the record chosen. "Newer version of" links the two records with the versions
mechanism (web/versions.py): the older one is then superseded and drops out of the suggestions. Both records
must be the caller's own; any other id is simply not found, as on the record page. Record ids travel in the
URL as they do for every record page; nothing about the content does.
"""

from __future__ import annotations

import uuid
from itertools import combinations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from medvault.mar import duplicates
from medvault.mar.entries import ChartError
from medvault.vault import RecordNotFound
from medvault.web.clientip import client_ip
from medvault.web.pages import form_of, render, text_preview
from medvault.web.security import check_csrf, require_session, vault_of
from medvault.web.versions import link_as_version

ROLES = ("patient", "specialist")  # whoever holds records of their own
COMPARED = (
    ("title", "Title"),
    ("filename", "File"),
    ("content_type", "Kind of file"),
    ("size", "Size (bytes)"),
    ("service_date", "Date of service"),
    ("document_date", "Document date"),
    ("facility", "Facility"),
    ("provider", "Providers"),
    ("type", "Document type"),
    ("category", "Category"),
    ("description", "Description"),
    ("tags", "Tags"),
    ("confidentiality", "Confidentiality"),
    ("signed_by", "Signed by"),
)
DONE = {
    "kept": "Both records kept; this pair will not be suggested again.",
    "same": "Marked as one document: the chronology shows it once.",
    "versioned": "Linked as versions.",
}


def _key(medvault, session) -> bytes:
    return duplicates.duplicate_key(medvault.search.store, session.user_id, session.keys)


def _reason(near: dict) -> str:
    if near["reason"] == "same text":
        return f"Same document by its text (dates and numbers agree), {round(near['similarity'] * 100)} % alike"
    return "Re-scan: same title, facility and date of service"


def suggestions(medvault, session) -> list[dict]:
    """Every suggested pair not yet decided: exact copies first, then near ones, each with its reason."""
    found = duplicates.find(medvault.vault, session)
    pairs = [
        {"records": pair, "reason": "Exact copy (the same bytes)"}
        for group in found["exact"]
        for pair in combinations(group["records"], 2)
    ]
    pairs += [{"records": tuple(near["records"]), "reason": _reason(near)} for near in found["near"]]
    decided = medvault.duplicate_reviews.decided(session.user_id, _key(medvault, session))
    return [p for p in pairs if not decided(p["records"][0]["id"], p["records"][1]["id"])]


async def duplicates_page(request: Request) -> Response:
    session = require_session(request, roles=ROLES)
    medvault = vault_of(request)
    pairs = await run_in_threadpool(suggestions, medvault, session)
    return render(request, "duplicates.html", pairs=pairs, notice=DONE.get(request.query_params.get("done", "")))


def _pair_ids(values: list[str]) -> tuple[str, str]:
    """Two different canonical record ids, or 404 (a malformed id names no record)."""
    try:
        a, b = (str(uuid.UUID(value)) for value in values)
    except ValueError:
        raise HTTPException(404, "Record not found") from None
    if a == b:
        raise HTTPException(404, "Record not found")
    return a, b


def _rows(a: dict, b: dict) -> list[dict]:
    """The details of both records, field by field, with whether they differ (fields neither has are left out)."""
    rows = []
    for key, label in COMPARED:
        values = [r.get(key) for r in (a, b)]
        shown = [", ".join(v) if isinstance(v, list) else ("" if v is None else str(v)) for v in values]
        if any(shown):
            rows.append({"label": label, "a": shown[0], "b": shown[1], "differs": shown[0] != shown[1]})
    return rows


def _compare(request: Request, session, ids: tuple[str, str]) -> dict:
    """Both records opened (the caller's own only), older upload first, with previews and whether they are current."""
    medvault = vault_of(request)
    opened = [medvault.vault.open(rid, session.user_id, session.keys) for rid in ids]
    if any(r.owner_id != session.user_id for r in opened):
        raise RecordNotFound
    opened.sort(key=lambda r: (r.created_at, r.id))
    for record in opened:
        medvault.audit.append("view", session.user_id, record.id, client_ip(request.scope))
    a, b = (r.as_json() for r in opened)
    return {
        "a": a,
        "b": b,
        "a_text": text_preview(medvault, opened[0]),
        "b_text": text_preview(medvault, opened[1]),
        "rows": _rows(a, b),
        "superseded": medvault.vault.superseded_among([a["id"], b["id"]]),
    }


async def _comparison(request: Request, session, ids: tuple[str, str], status_code: int = 200, **extra) -> Response:
    view = await run_in_threadpool(_compare, request, session, ids)
    return render(request, "duplicate_compare.html", status_code, **view, **extra)


async def compare_page(request: Request) -> Response:
    """Two records side by side: details, previews, and the decision buttons."""
    session = require_session(request, roles=ROLES)
    return await _comparison(request, session, _pair_ids([request.query_params.get(k, "") for k in ("a", "b")]))


def _own(medvault, session, ids: tuple[str, str]) -> None:
    for rid in ids:  # both must be the caller's own
        if medvault.vault.open(rid, session.user_id, session.keys).owner_id != session.user_id:
            raise RecordNotFound


def _keep_both(medvault, session, ids: tuple[str, str]) -> None:
    _own(medvault, session, ids)
    medvault.duplicate_reviews.keep_both(session.user_id, _key(medvault, session), *ids)


def _same_document(medvault, session, kept: str, duplicate: str) -> None:
    """Both records stay; the chronology of the caller's chart cites `kept` and names `duplicate` beside it."""
    _own(medvault, session, (kept, duplicate))
    try:
        desk = medvault.chart.desk(session, None)
    except ChartError as exc:  # a specialist's own records are in no chart
        raise HTTPException(exc.status, str(exc)) from None
    medvault.duplicate_reviews.same_document(session.user_id, _key(medvault, session), desk.key, kept, duplicate)


async def resolve_page(request: Request) -> Response:
    """The owner's decision on a pair: keep both, one document (citing A or B), or one is the newer version."""
    session = require_session(request, roles=ROLES)
    form = await form_of(request)
    check_csrf(request, session, form.get("csrf_token"))
    a, b = _pair_ids([form.get("a", ""), form.get("b", "")])
    decision = form.get("decision")
    if decision == "keep":
        await run_in_threadpool(_keep_both, vault_of(request), session, (a, b))
        return RedirectResponse("/records/duplicates?done=kept", 303)
    if decision in ("a-same", "b-same"):
        kept, duplicate = (a, b) if decision == "a-same" else (b, a)
        await run_in_threadpool(_same_document, vault_of(request), session, kept, duplicate)
        return RedirectResponse("/records/duplicates?done=same", 303)
    if decision not in ("a-newer", "b-newer"):
        raise HTTPException(400, "Choose to keep both, one document, or which record is the newer version")
    older, newer = (b, a) if decision == "a-newer" else (a, b)
    try:
        await run_in_threadpool(link_as_version, request, session, older, newer)
    except HTTPException as exc:
        if exc.status_code not in (400, 409):
            raise
        return await _comparison(request, session, (a, b), exc.status_code, error=exc.detail)
    return RedirectResponse("/records/duplicates?done=versioned", 303)


routes = [
    Route("/records/duplicates", duplicates_page),
    Route("/records/duplicates/compare", compare_page),
    Route("/records/duplicates/resolve", resolve_page, methods=["POST"]),
]
