"""The patient's dashboard in a real browser: the landing page after sign-in, its counts, recent records, who
opened the records, live shares with their expiry, quick links that work from the keyboard, and phone width;
a specialist still lands on their patients."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import PHONE, assert_friendly, shot, sign_in
from tests.support import upload

PASSWORD = "a long dashboard passphrase"


@pytest.fixture(scope="module")
def dashboard(server):
    """A patient with two letters, one shared for 30 days with a specialist who opened it and wrote back."""
    patient = server.account("dora", password=PASSWORD)["client"]
    doctor = server.account("drdash", role="specialist", password=PASSWORD)["client"]
    ids = [
        upload(patient, text, name, {"title": title, "service_date": date}, "text/plain").json()["id"]
        for name, title, date, text in (
            ("gp.txt", "GP letter", "2024-02-01", b"Seen by the GP."),
            ("lab.txt", "Blood test", "2024-03-05", b"Haemoglobin 14.1 g/dL"),
        )
    ]
    shared = patient.post("/api/v1/shares", json={"specialist": "drdash", "records": ids[:1], "expires_in_days": 30})
    assert shared.status_code == 201, shared.text
    assert doctor.get(f"/api/v1/records/{ids[0]}").status_code == 200
    sent = doctor.post("/api/v1/summaries", json={"patient": "dora", "title": "Clinic reply", "markdown": "All well."})
    assert sent.status_code == 201, sent.text
    return ids


def _count(page, name: str) -> int:
    return int(page.locator(f"#count-{name}").inner_text())


def test_patient_lands_on_the_dashboard(new_page, server, dashboard):
    """After sign-in the patient sees the counts, the newest records, the specialist's view of a letter, the live
    share with its end date; opening the summary clears the unread count."""
    page = new_page()
    sign_in(page, server, "dora", PASSWORD)
    assert page.url.endswith("/dashboard")
    assert page.get_by_role("heading", name="Hello, dora").is_visible()
    # two letters, the summary and its PDF; the PDF is not a second unread summary
    assert (_count(page, "records"), _count(page, "shares"), _count(page, "unread")) == (4, 1, 1)
    recent = page.locator("#recent-records li")
    assert recent.count() == 4 and "Clinic reply" in recent.first.inner_text()
    access = page.locator("#recent-access").inner_text()  # the specialist wrote the summary, then viewed
    assert re.search(r"drdash \(specialist\) · summary · Clinic reply", access)
    assert re.search(r"drdash \(specialist\) · view · GP letter", access) and "dora" not in access
    assert re.search(r"drdash.*read.*ends \d{4}-\d\d-\d\d", page.locator("#active-shares").inner_text(), re.S)
    shot(page, "dashboard")

    page.locator("#counts").get_by_role("link", name=re.compile("unread summary")).click()
    page.get_by_role("link", name="Clinic reply").click()
    page.get_by_role("link", name="Dashboard").click()
    assert _count(page, "unread") == 0
    assert_friendly(page)


def test_quick_links_from_the_keyboard(new_page, server, dashboard):
    """Tabbing from the top reaches the quick links in order; Enter on "Upload a record" opens the upload form,
    and "Open my chronology" opens the chart."""
    page = new_page()
    sign_in(page, server, "dora", PASSWORD)
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Upload a record":
            break
    else:
        pytest.fail("the upload quick link is not reachable with Tab")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/records#upload-form") and page.locator("#upload-form").is_visible()
    page.go_back()
    page.get_by_role("link", name="Open my chronology").click()
    page.wait_for_url(re.compile(r"/chart$"))


def test_dashboard_at_phone_width(new_page, server, dashboard):
    """At 375 px the dashboard fits without sideways scrolling."""
    page = new_page(viewport=PHONE)
    sign_in(page, server, "dora", PASSWORD)
    page.locator("#counts").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "phone-dashboard")


def test_specialist_lands_on_patients(new_page, server, dashboard):
    """A specialist signs in to the list of patients who shared with them; the dashboard URL sends them there."""
    page = new_page()
    sign_in(page, server, "drdash", PASSWORD)
    assert page.url.endswith("/patients")
    assert page.get_by_role("link", name="dora").is_visible()
    page.goto(f"{server.base}/dashboard")
    assert page.url.endswith("/patients")
