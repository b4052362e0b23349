"""The patient's start page: how many records, live shares and unread summaries; the newest records; who
opened the patient's records lately; the live shares with their expiry; quick links.

It must stay fast however many records there are, so it opens no record per record: counts and the newest
records come from the reader's sealed search index (already in memory after the first search of a session),
shares and summaries from plain queries, and "unread" from the audit trail (a summary the patient never
viewed, previewed or downloaded). Only the few records named in the recent-access list are opened, for
their titles.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from medvault.mar import summarydoc
from medvault.web.pages import render, start_page
from medvault.web.security import require_session, vault_of
from medvault.web.sharepages import with_titles

RECENT_RECORDS = 5
RECENT_ACCESS = 8


def _summary(request: Request, session) -> dict:
    medvault = vault_of(request)
    newest = medvault.search.search(session, {"sort": "-uploaded", "limit": RECENT_RECORDS})
    shares = [s for s in medvault.sharing.list_for(session.user_id, "patient") if not s["expired"]]
    # A summary's PDF is not a second summary to read: the index's listings tell it, without opening a record.
    received = medvault.search.items(session, medvault.summaries.inbox(session.user_id))
    inbox = [item["id"] for item in received if not summarydoc.is_pdf_copy(item)]
    unread = len(inbox) - len(medvault.audit.opened_by(session.user_id, inbox))
    access = medvault.audit.for_owner(session.user_id, RECENT_ACCESS, others_only=True)
    return {
        "counts": {"records": newest["total"], "shares": len(shares), "unread": unread},
        "recent": newest["items"],
        "access": with_titles(medvault, session, access),
        "shares": shares,
    }


async def dashboard_page(request: Request) -> Response:
    session = require_session(request)
    if session.role != "patient":
        return RedirectResponse(start_page(session.role), 303)
    return render(request, "dashboard.html", **await run_in_threadpool(_summary, request, session))


routes = [Route("/dashboard", dashboard_page)]
