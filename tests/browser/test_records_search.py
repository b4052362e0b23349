"""Records search in a real browser: filters post in a form (nothing in the URL), "arrange by" shows groups
with counts, and "Next page" carries the sealed cursor in a hidden field."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import assert_friendly, shot, sign_in
from tests.support import upload

PASSWORD = "a long searching passphrase"
RECORDS = [
    ("knee-mri.txt", {"title": "Knee MRI", "facility": "St Mary", "service_date": "2024-03-02", "type": "imaging"}),
    ("blood-test.txt", {"title": "Blood test", "facility": "City Lab", "service_date": "2024-05-10", "type": "lab"}),
    ("knee-xray.txt", {"title": "Knee X-ray", "facility": "St Mary", "service_date": "2023-11-20", "type": "imaging"}),
]


@pytest.fixture(scope="module")
def searcher(server):
    person = server.account("sofia", password=PASSWORD)
    for name, metadata in RECORDS:
        made = upload(person["client"], f"{metadata['title']} report".encode(), name, metadata, "text/plain")
        assert made.status_code == 201, made.text
    return person


def test_filter_arrange_and_page(new_page, server, searcher):
    """Filtering the records page by facility and then date, arranging by facility and searching words each narrow or
    group the results, and nothing of the filter lands in the URL."""
    page = new_page()
    sign_in(page, server, "sofia", PASSWORD)
    page.goto(f"{server.base}/records")

    # Filter by facility: two records at St Mary, and nothing of the filter lands in the URL.
    page.get_by_label("Facility").fill("St Mary")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/records/search$"))
    assert page.locator("#search-total").inner_text().startswith("2 records")
    rows = page.locator("#search-results tbody tr")
    assert rows.count() == 2
    assert "St Mary" not in page.url
    assert page.get_by_label("Facility").input_value() == "St Mary"  # the form keeps what was asked

    # Dates narrow further: only the 2024 knee MRI.
    page.get_by_label("Date of service from").fill("2024-01-01")
    page.get_by_role("button", name="Search").click()
    assert page.locator("#search-results tbody tr").count() == 1
    assert "Knee MRI" in page.locator("#search-results").inner_text()

    # Arrange everything by facility, oldest service first: groups with their counts.
    page.get_by_label("Facility").fill("")
    page.get_by_label("Date of service from").fill("")
    page.get_by_label("Arrange by").select_option("facility")
    page.get_by_label("Sort").select_option("service_date")
    page.get_by_role("button", name="Search").click()
    groups = page.locator("#search-groups li")
    assert [groups.nth(i).inner_text() for i in range(groups.count())] == ["St Mary 2", "City Lab 1"]
    titles = page.locator("#search-results tbody tr td:first-child")
    assert [titles.nth(i).inner_text() for i in range(titles.count())] == ["Knee X-ray", "Knee MRI", "Blood test"]
    shot(page, "records-search-arranged")

    # Words search through the text of the records.
    page.get_by_label("Arrange by").select_option("")
    page.get_by_label("Words").fill("blood")
    page.get_by_role("button", name="Search").click()
    assert page.locator("#search-results tbody tr").count() == 1

    assert_friendly(page)


def test_next_page_carries_the_cursor(new_page, server, searcher):
    """Twelve records, ten per page: "Next page" posts the sealed cursor back and shows the last two."""
    for n in range(9):
        made = upload(searcher["client"], b"note", f"note-{n}.txt", {"title": f"Note {n:02d}"}, "text/plain")
        assert made.status_code == 201, made.text
    page = new_page()
    sign_in(page, server, "sofia", PASSWORD)
    page.goto(f"{server.base}/records")
    page.get_by_label("Sort").select_option("title")
    page.get_by_label("Per page").select_option("10")
    page.get_by_role("button", name="Search").click()
    assert page.locator("#search-total").inner_text().startswith("12 records")
    assert page.locator("#search-results tbody tr").count() == 10
    cursor = page.locator('#next-page input[name="cursor"]')
    assert cursor.get_attribute("type") == "hidden" and len(cursor.get_attribute("value")) > 20
    page.get_by_role("button", name="Next page").click()
    page.wait_for_url(re.compile(r"/records/search$"))  # the cursor never enters the URL
    titles = page.locator("#search-results tbody tr td:first-child")
    assert [titles.nth(i).inner_text() for i in range(titles.count())] == ["Note 07", "Note 08"]
    assert "page 2" in page.locator("#search-total").inner_text()
    assert page.locator("#next-page").count() == 0
    shot(page, "records-search-page-2")

    # A forged cursor is refused with a clear message on the form.
    page.get_by_role("button", name="Search").click()
    page.locator('#next-page input[name="cursor"]').evaluate("el => el.value = 'forged'")
    page.get_by_role("button", name="Next page").click()
    assert "cursor" in page.locator("#search-error").inner_text()
    assert_friendly(page)
