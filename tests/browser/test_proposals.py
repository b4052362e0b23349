"""Reading the records in a real browser: a patient reads their chart in batches (a progress bar counts the
records read), sees what each suggests (the scan read by OCR), ticks and edits proposals, accepts them as
occurrences, is told kindly when one lacks a date, and rejects it."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import assert_friendly, shot, sign_in
from tests.mar import chartgen
from tests.support import require_tool, upload

PASSWORD = "a long reading passphrase"


@pytest.fixture(scope="module")
def reader(server):
    require_tool("tesseract")
    person = server.account("rhea", password=PASSWORD)
    records = chartgen.chart()
    chosen = [*records[:10], next(r for r in records if r.scanned)]  # 3 photos among the first ten
    for record in chosen:
        made = upload(person["client"], record.content, record.name, {"title": record.name[:-4]}, record.content_type)
        assert made.status_code == 201, made.text
    return chosen


def _row(page, title: str):
    return page.locator("#proposals tbody tr").filter(has=page.get_by_role("link", name=title, exact=True))


def test_read_in_batches_then_accept_edit_and_reject(new_page, server, reader):
    page = new_page()
    sign_in(page, server, "rhea", PASSWORD)
    page.goto(f"{server.base}/chart")
    page.get_by_role("link", name="Read the records").first.click()
    page.wait_for_url(re.compile(r"/chart/proposals$"))
    assert page.locator("#no-proposals").is_visible()

    page.get_by_role("button", name="Read the next records").click()
    assert page.get_by_label("Records read: 10 of 11").count() == 1
    page.get_by_role("button", name="Read the next records").click()
    progress = page.locator("#read-progress")
    assert progress.get_attribute("value") == progress.get_attribute("max") == "11"
    assert page.locator("#proposals tbody tr").count() == 11
    scan = _row(page, "scanned-letter")
    assert "OCR" in scan.inner_text() and scan.get_by_label("Date of service").input_value() == "2024-09-24"
    assert _row(page, "ed-note").get_by_label("Date of service").input_value() == "2024-03-01"
    assert "not loss of consciousness" in _row(page, "ed-note").inner_text()
    shot(page, "chart-proposals")

    # Accept two, one with its facility edited.
    _row(page, "ed-note").get_by_role("checkbox").check()
    _row(page, "scanned-letter").get_by_role("checkbox").check()
    _row(page, "scanned-letter").get_by_label("Facility").fill("Riverside Ortho (scanned letter)")
    page.get_by_role("button", name="Accept the chosen as occurrences").click()
    assert page.locator("#chart-notice").inner_text() == "Accepted as occurrences."
    assert page.locator("#proposals tbody tr").count() == 9

    # A photo has no date: accepting it is refused with the reason; rejecting it works.
    photo = _row(page, "photo-0")
    assert photo.get_by_label("Date of service").input_value() == ""
    photo.get_by_role("checkbox").check()
    page.get_by_role("button", name="Accept the chosen as occurrences").click()
    assert "has no date" in page.locator("#chart-error").inner_text()
    assert_friendly(page)
    _row(page, "photo-0").get_by_role("checkbox").check()
    page.get_by_role("button", name="Reject the chosen").click()
    assert page.locator("#chart-notice").inner_text() == "Rejected."
    assert page.locator("#proposals tbody tr").count() == 8

    page.goto(f"{server.base}/chart")
    rows = page.locator("#section-occurrences tr.occurrence, #chronology tr.occurrence")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    assert any("Riverside Ortho (scanned letter)" in t and "2024-09-24" in t for t in texts), texts
    assert any("St. Mercy Hospital" in t and "2024-03-01" in t for t in texts), texts
    assert page.locator("#undated li").count() == 3, "the photos (one rejected) stay listed as undated"
