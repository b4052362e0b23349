"""The patient's health overview: problems, medications, allergies, immunisations and a chart per lab test,
as a page (`/chart/health`, and a shared chart's for its specialist) and as JSON
(`POST /api/v1/charts/health`, the patient named in the body as for the other chart calls)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from medvault.mar import healthview
from medvault.web.chartpages import _chart_errors, _desk, _viewed
from medvault.web.charts import _open, _refusals
from medvault.web.entryview import chart_base
from medvault.web.pages import render


async def _overview(chart, desk) -> dict:
    entries = await run_in_threadpool(chart.entries, desk, ("occurrence",))
    return healthview.overview(entries)


@_chart_errors
async def health_page(request: Request) -> Response:
    _, chart, desk = await _desk(request)
    overview = await _overview(chart, desk)
    _viewed(request, chart, desk)
    return render(request, "chart_health.html", desk=desk, base=chart_base(desk), view=overview)


@_refusals
async def health_api(request: Request) -> Response:
    chart, desk, _ = await _open(request, set())
    overview = await _overview(chart, desk)
    _viewed(request, chart, desk)
    for series in overview["labs"]:
        del series["picture"]  # drawing instructions are the page's business
    return JSONResponse({"patient": desk.patient, **overview})


routes = [
    Route("/chart/health", health_page),
    Route("/patients/{username}/chart/health", health_page),
    Route("/api/v1/charts/health", health_api, methods=["POST"]),
]
