"""The login page when the guard steps in: a clear "slowed down" message with the wait in seconds (429),
and a clear refusal (403) when one address tries too many accounts, while a browser that signed in to
its account before keeps its right to sign in. On a server of its own, as it refuses 127.0.0.1."""

from __future__ import annotations

import re

from tests.browser.conftest import assert_friendly, shot, sign_in

PASSWORD = "the owner's long passphrase"


def _try(page, server, username: str, password: str = "a wrong password"):
    page.goto(f"{server.base}/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Sign in").click()
    return nav.value


def test_slowed_down_then_refused_known_browser_still_signs_in(new_page, server):
    """Failures for one account bring a 429 page saying how many seconds to wait; failures across many
    accounts bring a 403 page; the owner's browser, known from an earlier sign-in, still gets in."""
    server.account("owner", password=PASSWORD)
    owners_browser = new_page()
    sign_in(owners_browser, server, "owner", PASSWORD)  # leaves the device cookie
    attacker = new_page()
    for _ in range(5):
        assert _try(attacker, server, "owner").status == 200
    slowed = _try(attacker, server, "owner")
    assert slowed.status == 429
    message = attacker.locator("#login-message").inner_text()
    assert "Slowed down" in message
    wait = int(attacker.locator("#retry-after").inner_text())
    assert 1 <= wait <= 300 and re.search(rf"wait {wait} seconds?", message)
    assert slowed.headers["retry-after"] == str(wait)
    shot(attacker, "login-slowed-down")
    for name in ("ann", "ben", "cal", "dot", "eve"):
        _try(attacker, server, name)
    refused = _try(attacker, server, "fay")
    assert refused.status == 403
    message = attacker.locator("#login-message").inner_text()
    assert "Sign-in refused" in message and "Too many failed sign-ins" in message
    shot(attacker, "login-refused")
    assert_friendly(attacker)
    owners_browser.get_by_role("button", name="Sign out owner").click()
    owners_browser.wait_for_url(f"{server.base}/login")
    sign_in(owners_browser, server, "owner", PASSWORD)
    assert owners_browser.url.endswith("/dashboard")
