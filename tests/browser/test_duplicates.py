"""Reviewing duplicates in a real browser: the suggestions, two texts side by side and "keep both", two re-scanned
images side by side and "newer version of", phone width, and another patient's record a friendly 404."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import PHONE, assert_friendly, shot, sign_in
from tests.support import png_bytes, upload

PASSWORD = "a long duplicates passphrase"
LETTER = b"Discharge letter.\nDiagnosis: sprained ankle <b>left</b>.\nRest for two weeks.\n"
SCAN = {"title": "Ankle X-ray", "facility": "City Hospital", "service_date": "2024-05-02"}


@pytest.fixture(scope="module")
def records(server):
    """Dana's exact copy of a letter and a re-scan of an X-ray (other bytes, same title, facility and date)."""
    dana = server.account("dana", password=PASSWORD)["client"]
    ids = {}
    for key, content, name, meta, kind in (
        ("letter", LETTER, "letter.txt", {"title": "Discharge letter"}, "text/plain"),
        ("copy", LETTER, "letter-copy.txt", {"title": "Discharge letter (copy)"}, "text/plain"),
        ("scan", png_bytes(96, 64), "xray.png", SCAN, "image/png"),
        ("rescan", png_bytes(120, 80), "xray-rescan.png", SCAN, "image/png"),
    ):
        made = upload(dana, content, name, meta, kind)
        assert made.status_code == 201, made.text
        ids[key] = made.json()["id"]
    eric = server.account("eric", password=PASSWORD)["client"]
    ids["eric"] = upload(eric, b"eric's note", "eric.txt", {"title": "Eric's private note"}, "text/plain").json()["id"]
    return ids


def _loaded(page, selector: str) -> list[int]:
    page.wait_for_function(f"() => document.querySelector('{selector}').complete")
    return page.locator(selector).evaluate("img => [img.naturalWidth, img.naturalHeight]")


def test_review_keep_both_then_newer_version(new_page, server, records):
    """The list names both pairs; the letters compare side by side (as text, never markup) and are kept; the
    X-rays compare as images and the re-scan becomes the newer version; then nothing is left to review."""
    page = new_page()
    sign_in(page, server, "dana", PASSWORD)
    page.goto(f"{server.base}/records")
    page.get_by_role("link", name="Review possible duplicates").click()
    pairs = page.locator("#duplicate-pairs li")
    assert pairs.count() == 2
    assert "Exact copy" in pairs.nth(0).inner_text() and "Re-scan" in pairs.nth(1).inner_text()
    shot(page, "duplicates")

    pairs.nth(0).get_by_role("link", name=re.compile("^Compare side by side")).click()
    assert page.locator("#a-text-preview").inner_text() == page.locator("#b-text-preview").inner_text()
    assert "<b>left</b>" in page.locator("#a-text-preview").inner_text()
    assert page.locator("#a-text-preview b").count() == 0
    differs = page.locator("#compare-details tr.differs th")
    assert [differs.nth(i).inner_text() for i in range(differs.count())] == ["Title differs", "File differs"]
    shot(page, "duplicates-compare-text")
    page.get_by_role("button", name="Keep both").click()
    assert "Both records kept" in page.locator("#duplicates-notice").inner_text()
    assert page.locator("#duplicate-pairs li").count() == 1

    page.get_by_role("link", name=re.compile("^Compare side by side")).click()
    assert _loaded(page, "#a-image-preview") == [96, 64] and _loaded(page, "#b-image-preview") == [120, 80]
    assert page.locator("#compare-details tr.differs").count() == 2  # the files' names and sizes
    shot(page, "duplicates-compare-images")
    page.get_by_role("button", name="Mark B as the newer version of A").click()
    assert page.locator("#duplicates-notice").inner_text() == "Linked as versions."
    assert page.locator("#no-duplicates").is_visible()

    page.goto(f"{server.base}/records/{records['scan']}")
    page.get_by_role("link", name="open the newer version").click()
    assert page.url.endswith(f"/records/{records['rescan']}")
    assert page.locator("#earlier-version").get_attribute("href") == f"/records/{records['scan']}"
    assert page.locator("#signature").inner_text() == "signature valid"
    assert_friendly(page)


def test_compare_at_phone_width(new_page, server, records):
    """At 375 px the two records stack and the page does not scroll sideways."""
    page = new_page(viewport=PHONE)
    sign_in(page, server, "dana", PASSWORD)
    page.goto(f"{server.base}/records/duplicates/compare?a={records['letter']}&b={records['copy']}")
    first = page.locator("#a-text-preview").bounding_box()
    second = page.locator("#b-text-preview").bounding_box()
    assert second["y"] > first["y"] + first["height"]  # one under the other
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "phone-duplicates-compare")
    page.goto(f"{server.base}/records/duplicates")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "phone-duplicates")


def test_another_patients_record_is_not_found(new_page, server, records):
    """Pairing one's own record with another patient's gives a friendly 404 page without their record."""
    page = new_page()
    sign_in(page, server, "dana", PASSWORD)
    response = page.goto(f"{server.base}/records/duplicates/compare?a={records['letter']}&b={records['eric']}")
    assert response.status == 404 and page.get_by_role("heading", name="Not found").is_visible()
    assert "Eric" not in page.content() and "Discharge letter" not in page.content()
    assert_friendly(page)
