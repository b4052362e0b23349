"""Accounts over the real server: invitations, password change, recovery, resets, sessions, the login form."""

from __future__ import annotations

import re

import pytest

from tests.support import cli, upload


def test_invitation_is_single_use(server):
    """An invitation code works once; a second accept is refused without revealing anything."""
    code = server.invite("carol")
    with server.client() as c:
        first = c.post("/api/v1/invitations/accept", json={"code": code, "password": "carol's long password"})
        assert first.status_code == 201 and first.json()["recovery_key"]
        again = c.post("/api/v1/invitations/accept", json={"code": code, "password": "another long password"})
        assert again.status_code == 400 and "invalid" in again.json()["detail"]
        weak = c.post("/api/v1/invitations/accept", json={"code": server.invite("dave"), "password": "short"})
        assert weak.status_code == 400 and "Password" in weak.json()["detail"]


def test_password_change_keeps_records(server):
    """Changing the password re-wraps keys: old records still open, the old password no longer works."""
    erin = server.account("erin")
    c = erin["client"]
    rid = upload(c, b"erin's letter").json()["id"]
    changed = c.post(
        "/api/v1/account/password",
        json={"current_password": erin["password"], "new_password": "a brand new passphrase"},
    )
    assert changed.status_code == 200, changed.text
    with server.client() as fresh:
        assert fresh.post("/api/v1/login", json={"username": "erin", "password": erin["password"]}).status_code == 401
        login = fresh.post("/api/v1/login", json={"username": "erin", "password": "a brand new passphrase"})
        assert login.status_code == 200
        assert fresh.get(f"/api/v1/records/{rid}/content").content == b"erin's letter"


def test_recovery_key_resets_password_and_keeps_data(server):
    """A forgotten password is reset with the recovery key; records survive and a new recovery key is issued."""
    fay = server.account("fay")
    rid = upload(fay["client"], b"fay's scan").json()["id"]
    with server.client() as c:
        bad = c.post(
            "/api/v1/account/recover",
            json={"username": "fay", "recovery_key": "AAAA-BBBB", "new_password": "fresh passphrase 1"},
        )
        assert bad.status_code == 400
        ok = c.post(
            "/api/v1/account/recover",
            json={"username": "fay", "recovery_key": fay["recovery_key"], "new_password": "fresh passphrase 1"},
        )
        assert ok.status_code == 200 and ok.json()["recovery_key"] != fay["recovery_key"]
        assert c.post("/api/v1/login", json={"username": "fay", "password": "fresh passphrase 1"}).status_code == 200
        assert c.get(f"/api/v1/records/{rid}/content").content == b"fay's scan"


def test_admin_reset_locks_old_records(server):
    """`user reinvite` warns, ends sessions and leaves old records locked for the newly invited person."""
    gus = server.account("gus")
    rid = upload(gus["client"], b"gus's file").json()["id"]
    refused = cli(server.data_dir, "user", "reinvite", "gus", check=False)
    assert refused.returncode == 2 and "recovery key" in refused.stderr
    out = cli(server.data_dir, "user", "reinvite", "gus", "--yes", "--json").stdout
    code = re.search(r'"code": "([^"]+)"', out).group(1)
    assert gus["client"].get("/api/v1/records").status_code == 401  # sessions ended
    with server.client() as c:
        assert (
            c.post("/api/v1/invitations/accept", json={"code": code, "password": "gus new passphrase"}).status_code
            == 201
        )
        assert c.post("/api/v1/login", json={"username": "gus", "password": "gus new passphrase"}).status_code == 200
        assert c.get(f"/api/v1/records/{rid}").status_code != 200


def test_logout_and_log_out_everywhere(server):
    """Logout ends one session; revoke-all ends every session of the user."""
    hal = server.account("hal")
    second = server.client()
    token = second.post("/api/v1/login", json={"username": "hal", "password": hal["password"]}).json()["csrf_token"]
    assert len(hal["client"].get("/api/v1/sessions").json()["items"]) == 2
    assert second.post("/api/v1/logout", headers={"X-CSRF-Token": token}).status_code == 200
    assert second.get("/api/v1/records").status_code == 401
    assert hal["client"].get("/api/v1/records").status_code == 200
    third = server.client()
    third.post("/api/v1/login", json={"username": "hal", "password": hal["password"]})
    assert hal["client"].post("/api/v1/sessions/revoke-all").json()["revoked"] == 2
    assert third.get("/api/v1/records").status_code == 401


def test_disabled_user_cannot_log_in(server):
    """A disabled account gets the same answer as a wrong password, and its sessions end."""
    ivy = server.account("ivy")
    cli(server.data_dir, "user", "disable", "ivy")
    assert ivy["client"].get("/api/v1/records").status_code == 401
    with server.client() as c:
        response = c.post("/api/v1/login", json={"username": "ivy", "password": ivy["password"]})
        assert response.status_code == 401 and response.json()["detail"] == "Invalid username or password"


def test_login_form(server):
    """GET /login has the two fields; a failure re-renders with the message; success is a 303 to the start page."""
    server.account("jo")
    with server.client() as c:
        page = c.get("/login")
        assert 'name="username"' in page.text and 'name="password"' in page.text
        failed = c.post("/login", data={"username": "jo", "password": "wrong password!"})
        assert failed.status_code == 200 and "Invalid username or password" in failed.text
        ok = c.post("/login", data={"username": "jo", "password": "correct horse battery"})
        assert ok.status_code == 303 and ok.headers["location"] == "/dashboard"
        assert "Hello, jo" in c.get("/dashboard").text


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}])
def test_login_form_refuses_cross_site_posts(server, headers):
    """A cross-site post to the login form is refused before any password check."""
    with server.client() as c:
        response = c.post("/login", data={"username": "jo", "password": "correct horse battery"}, headers=headers)
        assert response.status_code == 403 and "set-cookie" not in response.headers


def test_forms_need_csrf_token(server):
    """Page forms (logout, delete) are refused without the session's CSRF token."""
    kim = server.account("kim")
    rid = upload(kim["client"], b"kim").json()["id"]
    c = kim["client"]
    assert c.post(f"/records/{rid}/delete", data={"csrf_token": "nope"}).status_code == 403
    assert c.get(f"/api/v1/records/{rid}").status_code == 200
    ok = c.post(f"/records/{rid}/delete", data={"csrf_token": c.headers["X-CSRF-Token"]})
    assert ok.status_code == 303


def test_html_upload_form_without_javascript(server):
    """The plain multipart form (csrf_token field first) uploads; without the token it is refused."""
    lee = server.account("lee")
    c = lee["client"]
    token = c.headers["X-CSRF-Token"]
    refused = c.post("/records/upload", data={"csrf_token": "bad"}, files={"file": ("a.txt", b"abc", "text/plain")})
    assert refused.status_code == 403
    ok = c.post("/records/upload", data={"csrf_token": token}, files={"file": ("a.txt", b"abc", "text/plain")})
    assert ok.status_code == 303 and ok.headers["location"].startswith("/records/")


def test_error_pages_are_friendly(server):
    """A browser asking for a missing page gets HTML without a stack trace."""
    with server.client() as c:
        page = c.get("/records/00000000-0000-0000-0000-000000000000", headers={"Accept": "text/html"})
        assert page.status_code == 401 and "<html" in page.text and "Traceback" not in page.text


def test_login_form_accepts_a_browsers_own_null_origin(server):
    """Under no-referrer a browser's own form sends `Origin: null` with Sec-Fetch-Site same-origin: accepted;
    `Origin: null` from anywhere else is refused."""
    server.account("nul")
    form = {"username": "nul", "password": "correct horse battery"}
    with server.client() as c:
        own = c.post("/login", data=form, headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"})
        assert own.status_code == 303
        other = c.post("/login", data=form, headers={"Origin": "null", "Sec-Fetch-Site": "cross-site"})
        assert other.status_code == 403
        sandboxed = c.post("/login", data=form, headers={"Origin": "null"})
        assert sandboxed.status_code == 403
