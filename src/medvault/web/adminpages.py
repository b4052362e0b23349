"""Administrator pages: people (invite, disable, reset), server health and the guard.

Administrators manage accounts and the server, never records, so nothing here opens a record. Every form
posts a CSRF token; an invitation link is shown once, on the page that answers the post, and never put in
a URL or a redirect.
"""

from __future__ import annotations

import datetime
import shutil
import time

from sqlalchemy import text
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from medvault.auth import AuthError
from medvault.auth.accounts import ROLES
from medvault.tls import certificate_expiry
from medvault.web.chart import attack_chart, jail_colours
from medvault.web.clientip import client_ip
from medvault.web.pages import form_of, render
from medvault.web.security import check_csrf, require_session, vault_of

PROFESSIONS = ("", "doctor", "nurse", "pharmacist", "therapist", "other")


async def _admin_form(request: Request) -> tuple[object, dict[str, str]]:
    session = require_session(request, roles=("admin",))
    form = await form_of(request)
    check_csrf(request, session, form.get("csrf_token"))
    return session, form


def _health(request: Request) -> list[dict]:
    """Disk free in the data folder, database reachable, certificate expiry: each with an ok flag."""
    medvault = vault_of(request)
    checks = []
    try:
        disk = shutil.disk_usage(medvault.data_dir)
        free_gib = disk.free / 1024**3
        share = disk.free / disk.total if disk.total else 0
        checks.append(
            {
                "name": "Disk space (data folder)",
                "ok": share >= 0.1,
                "value": f"{free_gib:.1f} GiB free of {disk.total / 1024**3:.1f} GiB ({share:.0%})",
            }
        )
    except OSError as exc:
        checks.append({"name": "Disk space (data folder)", "ok": False, "value": f"unreadable: {exc.strerror}"})
    try:
        with medvault.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks.append({"name": "Database", "ok": True, "value": f"reachable ({medvault.engine.dialect.name})"})
    except Exception:  # any driver error means "not reachable"; the details stay in the server log
        checks.append({"name": "Database", "ok": False, "value": "NOT reachable"})
    try:
        expiry = certificate_expiry(medvault.settings.cert_path)
        days = (expiry - datetime.datetime.now(datetime.UTC)).days
        checks.append(
            {
                "name": "TLS certificate",
                "ok": days >= 14,
                "value": f"expires {expiry:%Y-%m-%d} (in {days} days)",
            }
        )
    except (OSError, ValueError):
        checks.append({"name": "TLS certificate", "ok": False, "value": "unreadable"})
    return checks


def _admin_page(request: Request, status_code: int = 200, **context) -> Response:
    medvault = vault_of(request)
    return render(
        request,
        "admin.html",
        status_code,
        accounts=medvault.accounts.list(),
        health=_health(request),
        roles=ROLES,
        professions=PROFESSIONS,
        **context,
    )


async def admin_home(request: Request) -> Response:
    require_session(request, roles=("admin",))
    return _admin_page(request)


async def admin_invite(request: Request) -> Response:
    session, form = await _admin_form(request)
    medvault = vault_of(request)
    username = form.get("username", "").strip()
    try:
        invitation = medvault.accounts.invite(username, form.get("role", ""), form.get("profession") or None)
    except AuthError as exc:
        return _admin_page(request, 400, error=str(exc), form=form)
    medvault.events.emit("invitation-issued", client_ip(request.scope), user=username, by=session.username)
    link = f"{medvault.settings.https_url}/invite/{invitation.code}"
    return _admin_page(request, 201, invited={"username": username, "link": link, "expires": invitation.expires_at})


async def admin_disable(request: Request) -> Response:
    session, form = await _admin_form(request)
    username = form.get("username", "")
    if username == session.username:
        return _admin_page(request, 400, error="You cannot disable your own account")
    try:
        vault_of(request).accounts.disable(username)
    except AuthError as exc:
        return _admin_page(request, 400, error=str(exc))
    vault_of(request).events.emit("account-disabled", client_ip(request.scope), user=username, by=session.username)
    return _admin_page(request, notice=f"{username} is disabled and signed out everywhere.")


async def admin_reset(request: Request) -> Response:
    session, form = await _admin_form(request)
    username = form.get("username", "")
    if form.get("confirm") != "yes":
        return _admin_page(
            request, 400, error=f"Not reset: tick the box to confirm you understand what {username} loses."
        )
    medvault = vault_of(request)
    try:
        invitation = medvault.accounts.reinvite(username)
    except AuthError as exc:
        return _admin_page(request, 400, error=str(exc))
    medvault.events.emit("account-reset", client_ip(request.scope), user=username, by=session.username)
    link = f"{medvault.settings.https_url}/invite/{invitation.code}"
    return _admin_page(
        request, invited={"username": username, "link": link, "expires": invitation.expires_at, "reset": True}
    )


def _guard_of(request: Request):
    guard = request.app.state.guard
    if guard is None:
        raise HTTPException(409, "The guard is disabled on this server")
    return guard


async def admin_guard(request: Request) -> Response:
    require_session(request, roles=("admin",))
    status = _guard_of(request).status()
    series = status["timeline"]["series"]
    return render(
        request,
        "admin_guard.html",
        bans=sorted(status["bans"], key=lambda b: b["until"]),
        jails=status["jails"],
        chart=attack_chart(series, status["timeline"]["minutes"]),
        colours=jail_colours(list(series)),
        recent=list(reversed(status["recent"]))[:50],
        now=time.time(),
        notice=request.query_params.get("lifted") and "Ban lifted.",
    )


async def admin_lift(request: Request) -> Response:
    session, form = await _admin_form(request)
    network = form.get("network", "")
    guard = _guard_of(request)
    if not guard.unban(network):
        raise HTTPException(404, "No such ban")
    vault_of(request).events.emit("ban-lifted", client_ip(request.scope), network=network, by=session.username)
    return RedirectResponse("/admin/guard?lifted=1", 303)


routes = [
    Route("/admin", admin_home),
    Route("/admin/invite", admin_invite, methods=["POST"]),
    Route("/admin/disable", admin_disable, methods=["POST"]),
    Route("/admin/reset", admin_reset, methods=["POST"]),
    Route("/admin/guard", admin_guard),
    Route("/admin/guard/lift", admin_lift, methods=["POST"]),
]
