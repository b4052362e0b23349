"""Chart entries in a real browser: an injury recorded with its contributing occurrence and note, each entry on a
page of its own with its citations (to the cited page of a PDF) and everything linked to it, reached from the
chronology; the chart's annotations and a record's annotations; phone width; and another patient's entry is
a friendly 404."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import PHONE, assert_friendly, shot, sign_in
from tests.mar.pdfs import make_pdf
from tests.support import add_entry, upload

PASSWORD = "a long entries passphrase"


@pytest.fixture(scope="module")
def chart(server):
    """Ines's chart: a PDF letter cited at pages 3-4 by a fall, a note on the fall, and a specialist's annotation
    and standard of care about the letter; Otto's chart holds one entry of his own."""
    ines = server.account("ines", password=PASSWORD)["client"]
    doctor = server.account("drent", role="specialist", password=PASSWORD)["client"]
    pages = ["A&E letter", "Seen at 21:40.", "She says she slipped on the third", "step of the stairs."]
    letter = upload(ines, make_pdf(pages), "ae-letter.pdf", {"title": "A&E letter"}).json()["id"]
    assert ines.get("/chart").status_code == 200  # the chart key exists before sharing
    share = ines.post("/api/v1/shares", json={"specialist": "drent", "chart": True, "access": "annotate"})
    assert share.status_code == 201, share.text
    fall = {
        "type": "injury",
        "date": "2024-03-15",
        "description": "Fell on the stairs at home",
        "citations": [{"record": letter, "pages": "3-4", "quote": "slipped on the third step"}],
    }
    fall_id = add_entry(ines, "occurrence", fall)
    add_entry(ines, "occurrence", {"type": "encounter", "date": "2024-03-16", "description": "A&E visit"})
    add_entry(ines, "annotation", {"occurrence": fall_id, "text": "Dizzy before the fall"})
    add_entry(doctor, "annotation", {"record": letter, "text": "Letter matches the account"}, "ines")
    standard = {"source": "NICE NG39", "clause": "1.2"}
    note = "No X-ray within 4 hours"
    add_entry(doctor, "standard", {"record": letter, "standard": standard, "status": "not-met", "note": note}, "ines")
    otto = server.account("otto", password=PASSWORD)["client"]
    private = add_entry(
        otto, "occurrence", {"type": "note", "date": "2024-01-01", "description": "Otto's private note"}
    )
    return {"letter": letter, "fall": fall_id, "otto": private}


def _no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_injury_with_its_circumstances(new_page, server, chart):
    """The injury form links the fall and the note; the injury's page shows its fields and both; the fall's page
    shows its citation to pages 3-4 and the injury it contributes to; the citation opens the PDF at page 3."""
    page = new_page()
    sign_in(page, server, "ines", PASSWORD)
    page.get_by_role("link", name="Open my chronology").click()
    page.get_by_role("navigation", name="Chart").get_by_role("link", name="Injuries").click()
    assert page.locator("#no-injuries").is_visible()
    page.get_by_label("Date", exact=True).fill("2024-03-15")
    page.get_by_label("Body site").fill("left wrist")
    page.get_by_label("Mechanism").fill("fall on stairs")
    page.get_by_label("Severity").fill("moderate")
    page.get_by_label(re.compile("Injury on 2024-03-15: Fell on the stairs")).check()
    page.get_by_label(re.compile("Dizzy before the fall")).check()
    shot(page, "chart-injuries-form")
    page.get_by_role("button", name="Record injury").click()

    assert page.locator("#chart-notice").inner_text() == "Injury recorded."
    assert page.get_by_role("heading", level=1).inner_text() == "Injury on 2024-03-15: left wrist, fall on stairs"
    assert "moderate" in page.locator("#entry-fields").inner_text()
    assert page.locator("#unverified").is_visible()
    linked = page.locator("#linked tbody tr")
    assert linked.count() == 2
    assert re.search(r"Contributing occurrence\s+Occurrence: Injury on 2024-03-15: Fell", linked.nth(0).inner_text())
    assert re.search(r"Contributing note\s+Annotation: Dizzy before the fall", linked.nth(1).inner_text())
    shot(page, "chart-entry-injury")

    page.locator("#linked").get_by_role("link", name=re.compile("Fell on the stairs")).click()
    citation = page.locator("#citations li")
    assert re.search(r"A&E letter, page 3-4", citation.inner_text())
    assert "slipped on the third step" in citation.locator("blockquote").inner_text()
    assert citation.locator(".quote-check").inner_text() == "Verified on the page"
    relations = page.locator("#linked").inner_text()
    assert "Injury it contributes to" in relations and "Annotation on it" in relations
    shot(page, "chart-entry-occurrence")
    citation.get_by_role("link", name=re.compile("A&E letter")).click()
    assert page.locator("#cited-page").inner_text() == "Opened from a citation of page 3."
    assert page.locator("#pdf-preview").get_attribute("src").endswith("/preview#page=3")

    page.go_back()
    page.get_by_role("navigation", name="Chart").get_by_role("link", name="Injuries").click()
    assert page.locator("#injuries article").count() == 1
    shot(page, "chart-injuries")
    assert_friendly(page)


def test_annotations_on_a_record_and_in_the_chart(new_page, server, chart):
    """The chronology links each occurrence to its page; the chart's annotations say what each is about; the
    letter's page lists the specialist's annotation and standard of care, for the patient and the specialist."""
    page = new_page()
    sign_in(page, server, "ines", PASSWORD)
    page.goto(f"{server.base}/chart")
    page.locator("#chronology").get_by_role("link", name="encounter on 2024-03-16").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Occurrence: Encounter on 2024-03-16: A&E visit"
    assert page.locator("#no-links").is_visible()

    page.get_by_role("link", name="Annotations", exact=True).click()
    rows = page.locator("#annotations tbody tr")
    assert rows.count() == 2
    assert re.search(r"A&E letter\s+Letter matches the account", rows.nth(0).inner_text())
    assert re.search(r"Injury on 2024-03-15: Fell.*Dizzy before the fall", rows.nth(1).inner_text())
    shot(page, "chart-annotations")

    rows.nth(0).get_by_role("link", name="A&E letter").click()
    notes = page.locator("#record-notes article")
    assert notes.count() == 2
    assert "Letter matches the account" in notes.nth(0).inner_text()
    assert re.search(r"NICE NG39 · 1\.2.*not-met.*No X-ray within 4 hours", notes.nth(1).inner_text(), re.S)
    shot(page, "record-annotations")

    doctor = new_page()
    sign_in(doctor, server, "drent", PASSWORD)
    doctor.goto(f"{server.base}/records/{chart['letter']}")
    assert doctor.locator("#record-notes article").count() == 2
    # Followed by its address, not clicked: the letter's PDF viewer, loading above the notes, can shift the page
    # under a click and swallow it.
    href = (
        doctor.locator("#record-notes").get_by_role("link", name=re.compile("^Standard of care")).get_attribute("href")
    )
    assert re.match(r"/patients/ines/chart/entries/", href or "")
    doctor.goto(f"{server.base}{href}")
    assert doctor.locator("#entry-about").inner_text() == "A&E letter"
    assert_friendly(doctor)


def test_entry_pages_at_phone_width(new_page, server, chart):
    """At 375 px the entry, injuries and annotations pages fit without sideways scrolling."""
    page = new_page(viewport=PHONE)
    sign_in(page, server, "ines", PASSWORD)
    for path, name in (
        (f"/chart/entries/{chart['fall']}", "phone-chart-entry"),
        ("/chart/injuries", "phone-chart-injuries"),
        ("/chart/annotations", "phone-chart-annotations"),
    ):
        page.goto(f"{server.base}{path}")
        _no_sideways_scroll(page)
        shot(page, name)


def test_another_patients_entry_is_not_found(new_page, server, chart):
    """Ines opening the id of Otto's entry gets a friendly 404 page with nothing of it."""
    page = new_page()
    sign_in(page, server, "ines", PASSWORD)
    response = page.goto(f"{server.base}/chart/entries/{chart['otto']}")
    assert response.status == 404 and page.get_by_role("heading", name="Not found").is_visible()
    assert "Otto" not in page.content()
    assert_friendly(page)
