"""The proposals page: read the chart's records a batch at a time (a progress bar shows how many are read),
then accept (with edits) or reject what reading them suggests, one by one or ticked in bulk.

Works without script: "Read the next records" posts a form and the page comes back with the count read so far;
accepting and rejecting post the ticked proposals and, for each, the date, facility and providers as edited.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from medvault.mar import proposals
from medvault.mar.entries import ChartError
from medvault.web.chartpages import _chart_errors, _desk, _form, _viewed
from medvault.web.clientip import client_ip
from medvault.web.entryview import chart_base
from medvault.web.pages import render

NOTICES = {"accepted": "Accepted as occurrences.", "rejected": "Rejected."}


async def _page(request: Request, chart, desk, status: int = 200, **extra) -> Response:
    result = await run_in_threadpool(proposals.listing, chart, desk, None)
    _viewed(request, chart, desk)
    items = result["items"]
    return render(
        request,
        "chart_proposals.html",
        status,
        desk=desk,
        base=chart_base(desk),
        open=[p for p in items if p["data"]["status"] == "open"],
        decided=sum(p["data"]["status"] != "open" for p in items),
        **extra,
    )


@_chart_errors
async def proposals_page(request: Request) -> Response:
    _, chart, desk = await _desk(request)
    return await _page(request, chart, desk, notice=NOTICES.get(request.query_params.get("done", "")))


@_chart_errors
async def read_page(request: Request) -> Response:
    """Read one batch; the page shows the progress (read so far of all) and offers the next batch."""
    session, chart, desk = await _desk(request)
    await _form(request, session)
    done = await run_in_threadpool(proposals.read, chart, desk, None, client_ip(request.scope))
    listed = await run_in_threadpool(proposals.listing, chart, desk, None)
    total = len(listed["items"]) + done["remaining"]
    notice = f"{done['read']} record(s) read." + (f" {done['remaining']} left to read." if done["remaining"] else "")
    return await _page(request, chart, desk, notice=notice, progress=(total - done["remaining"], total))


def _edits(form, ids: list[str]) -> dict:
    edits = {}
    for pid in ids:
        edit: dict = {}
        for key in ("date", "facility", "description"):
            value = form.text(f"{key}-{pid}")
            if value:
                edit[key] = value
        providers = [p.strip() for p in form.get(f"providers-{pid}").split(";") if p.strip()]
        if providers:
            edit["providers"] = providers
        edits[pid] = edit
    return edits


@_chart_errors
async def decide_page(request: Request) -> Response:
    session, chart, desk = await _desk(request)
    form = await _form(request, session)
    ids = form.all("proposal")
    ip = client_ip(request.scope)
    try:
        if not ids:
            raise ChartError("Tick at least one proposal")
        if form.get("action") == "reject":
            await run_in_threadpool(proposals.reject, chart, desk, ids, ip)
            return RedirectResponse(f"{chart_base(desk)}/proposals?done=rejected", 303)
        await run_in_threadpool(proposals.accept, chart, desk, ids, _edits(form, ids), ip)
    except ChartError as exc:
        return await _page(request, chart, desk, exc.status, error=str(exc))
    return RedirectResponse(f"{chart_base(desk)}/proposals?done=accepted", 303)


def _routes(prefix: str) -> list[Route]:
    return [
        Route(f"{prefix}/proposals", proposals_page),
        Route(f"{prefix}/proposals/read", read_page, methods=["POST"]),
        Route(f"{prefix}/proposals/decide", decide_page, methods=["POST"]),
    ]


routes = [*_routes("/chart"), *_routes("/patients/{username}/chart")]
