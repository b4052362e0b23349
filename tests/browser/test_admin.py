"""An administrator in a real browser: server health, inviting, disabling and resetting people, and the
guard page (bans with a lift button, jail counts, the attack chart, recent events); other roles get 403."""

from __future__ import annotations

import time

import pytest

from tests.attackers import client_from, is_refused
from tests.browser.conftest import assert_friendly, shot, sign_in

PASSWORD = "the administrator's passphrase"


@pytest.fixture(scope="module")
def boss(server):
    """The administrator, created once per server."""
    return server.account("boss", role="admin", password=PASSWORD)


def _admin_page(new_page, server):
    page = new_page()
    sign_in(page, server, "boss", PASSWORD)
    return page


def test_admin_home_health_invite_disable_reset(new_page, server, boss):
    """Admins land on /admin with health checks; an invitation made there shows its one-time link, which
    works; disable marks the person; reset needs the confirmation box and warns about locked records."""
    page = _admin_page(new_page, server)
    assert page.url.endswith("/admin")
    health = page.locator("ul.health li")
    assert health.count() == 3
    for name in ("Disk space (data folder)", "Database", "TLS certificate"):
        item = page.locator(f"ul.health li[data-check='{name}']")
        assert "OK" in item.inner_text(), item.inner_text()
    assert "expires 20" in page.locator("li[data-check='TLS certificate']").inner_text()

    page.get_by_label("User name").fill("nina")
    page.get_by_label("Role").select_option("specialist")
    page.get_by_label("Profession").select_option("doctor")
    page.get_by_role("button", name="Create invitation").click()
    link = page.locator("#invite-link").input_value()
    assert link.startswith("https://") and "/invite/" in link
    assert "shown only once" in page.locator("#invitation").inner_text()
    shot(page, "admin-invited")
    assert "specialist (doctor)" in page.locator("tr[data-user='nina']").inner_text()

    invitee = new_page()
    invitee.goto(server.base + "/invite/" + link.rsplit("/", 1)[1])
    invitee.get_by_label("New password").fill("nina's own passphrase")
    invitee.get_by_label("Repeat the password").fill("nina's own passphrase")
    invitee.get_by_role("button", name="Create my account").click()
    invitee.locator("#recovery-key").wait_for()

    page.get_by_label("User name").fill("bad name!")
    page.get_by_role("button", name="Create invitation").click()  # the browser's pattern check stops it
    assert page.locator("#invite-username:invalid").count() == 1

    server.account("oscar", password=PASSWORD)
    page.goto(f"{server.base}/admin")
    page.get_by_role("button", name="Disable oscar").click()
    assert "oscar is disabled" in page.locator("#admin-message").inner_text()
    assert page.locator("tr[data-user='oscar'] .status").inner_text() == "disabled"

    server.account("pia", password=PASSWORD)
    page.goto(f"{server.base}/admin")
    csrf = page.locator("meta[name=csrf-token]").get_attribute("content")
    unconfirmed = page.request.post(
        f"{server.base}/admin/reset", form={"csrf_token": csrf, "username": "pia"}, headers={"Accept": "text/html"}
    )
    assert unconfirmed.status == 400 and "Not reset" in unconfirmed.text()
    no_csrf = page.request.post(f"{server.base}/admin/reset", form={"username": "pia", "confirm": "yes"})
    assert no_csrf.status == 403
    row = page.locator("tr[data-user='pia']")
    row.get_by_text("Reset…").click()
    warning = row.locator(".warning").inner_text()
    assert "stays locked" in warning and "recovery key" in warning
    shot(page, "admin-reset-warning")
    row.get_by_role("checkbox").check()
    row.get_by_role("button", name="Reset pia").click()
    assert "pia was reset" in page.locator("#invitation").inner_text()
    assert page.locator("tr[data-user='pia'] .status").inner_text() == "invited"
    shot(page, "admin")
    assert_friendly(page)


def test_guard_page_shows_and_lifts_a_ban(new_page, server, boss):
    """A scanner's ban (three probes from another address) and a manual API ban appear on the guard page
    with the chart; the Lift button frees the scanner's address."""
    page = _admin_page(new_page, server)
    with client_from(server, "127.0.0.78") as scanner:
        for path in ("/.env", "/wp-login.php", "/.git/config"):
            scanner.get(path)
    assert is_refused(server, "127.0.0.78")
    banned = boss["client"].post("/api/v1/admin/bans", json={"ip": "198.51.100.0/24", "seconds": 600})
    assert banned.status_code == 201, banned.text

    page.get_by_role("navigation").get_by_role("link", name="Guard").click()
    assert page.url.endswith("/admin/guard")
    scanner_row = page.locator("tr[data-network='127.0.0.78/32']")
    assert "scan" in scanner_row.inner_text()
    assert "manual" in page.locator("tr[data-network='198.51.100.0/24']").inner_text()
    chart = page.locator("svg.chart")
    assert chart.get_attribute("role") == "img" and "Attack events" in chart.get_attribute("aria-label")
    assert chart.locator("title").first.text_content() == "Attack events over the last hour"
    assert chart.locator("polyline[data-jail='scan']").count() == 1
    assert int(page.locator("tr[data-jail='scan'] td").nth(1).inner_text()) >= 3
    assert "127.0.0.78" in page.locator("table.recent").inner_text()
    shot(page, "admin-guard")

    scanner_row.get_by_role("button", name="Lift the ban on 127.0.0.78/32").click()
    assert page.locator("#guard-message").inner_text() == "Ban lifted."
    assert page.locator("tr[data-network='127.0.0.78/32']").count() == 0
    assert page.locator("tr[data-network='198.51.100.0/24']").count() == 1
    deadline = time.monotonic() + 5
    while is_refused(server, "127.0.0.78") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not is_refused(server, "127.0.0.78")
    assert_friendly(page)


def test_admin_pages_refuse_other_roles(new_page, server):
    """Patients and specialists get the friendly 403 page on every admin page and form."""
    server.account("pat", password=PASSWORD)
    page = new_page()
    sign_in(page, server, "pat", PASSWORD)
    for path in ("/admin", "/admin/guard"):
        response = page.goto(server.base + path)
        assert response.status == 403 and page.get_by_role("heading", name="Not allowed").is_visible()
        assert_friendly(page)
    csrf = page.locator("meta[name=csrf-token]").get_attribute("content")
    posted = page.request.post(
        f"{server.base}/admin/invite", form={"csrf_token": csrf, "username": "x", "role": "admin"}
    )
    assert posted.status == 403
    shot(page, "error-403")
