"""The chart workspace in a real browser, on the patient's own chart: candidates become occurrences, the
chronology splits around an incident and highlights gaps, the CSV downloads through a form, annotations,
witness statements compared word by word (escaped) and marked, professionals with a merge suggestion, and facilities
merged on their page and shown by that name in the chronology."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.conftest import PHONE, assert_friendly, shot, sign_in
from tests.support import add_entry, upload

PASSWORD = "a long charting passphrase"
RECORDS = [
    (
        "gp-visit.txt",
        {"title": "GP visit", "service_date": "2024-01-10", "facility": "Elm Surgery", "provider": "Dr. J. Smith"},
    ),
    (
        "ae-letter.txt",
        {
            "title": "A&E letter",
            "service_date": "2024-06-02",
            "facility": "City Hospital",
            "provider": "John Smith, MD",
        },
    ),
]


@pytest.fixture(scope="module")
def charter(server):
    person = server.account("nadia", password=PASSWORD)
    ids = {}
    for name, metadata in RECORDS:
        made = upload(person["client"], b"letter", name, metadata, "text/plain")
        assert made.status_code == 201, made.text
        ids[metadata["title"]] = made.json()["id"]
    return ids


def _rows(page, section: str) -> list[str]:
    rows = page.locator(f"#section-{section} tr.occurrence")
    return [rows.nth(i).inner_text() for i in range(rows.count())]


def test_chronology_candidates_incident_gaps_csv(new_page, server, charter, tmp_path: Path):
    """Candidates become occurrences citing their record, hand-written markup stays text, gaps are shown, a bad
    date is refused kindly, an annotation is added, and an incident date splits the chronology and its CSV."""
    page = new_page()
    sign_in(page, server, "nadia", PASSWORD)
    page.get_by_role("link", name="Chart", exact=True).click()
    page.wait_for_url(re.compile(r"/chart$"))
    assert page.locator("#no-occurrences").is_visible()
    candidates = page.locator("#candidates li")
    assert candidates.count() == 2
    shot(page, "chart-candidates")

    # Both candidates become occurrences citing their record; then none is left to propose.
    page.get_by_role("button", name="Add GP visit as occurrence").click()
    assert page.locator("#chart-notice").inner_text() == "Occurrence added."
    page.get_by_role("button", name="Add A&E letter as occurrence").click()
    assert page.locator("#candidates").count() == 0
    rows = _rows(page, "occurrences")
    assert len(rows) == 2 and "GP visit" in rows[0] and "A&E letter" in rows[1]
    assert "verified" in rows[0] and "Elm Surgery" in rows[0] and "Dr. J. Smith" in rows[0]
    assert page.locator("tr.gap").count() == 1  # January to June: one gap of more than 30 days
    assert "Gap: " in page.locator("tr.gap").inner_text()

    # A hand-written occurrence with markup in it: shown as text.
    page.get_by_label("Type", exact=True).select_option("injury")
    page.get_by_label("Date", exact=True).fill("2024-03-15")
    page.get_by_label("Facility", exact=True).last.fill("Home")
    page.get_by_label("Description").fill("Fell down the stairs <b>hard</b>")
    page.get_by_role("button", name="Add occurrence").click()
    rows = _rows(page, "occurrences")
    assert len(rows) == 3 and "Fell down the stairs <b>hard</b>" in rows[1] and "not verified" in rows[1]
    assert page.locator("#chronology b").count() == 0
    assert page.locator("tr.gap").count() == 2

    # A bad date answers on the page, friendly.
    page.get_by_label("Date", exact=True).fill("2024-02-31")
    page.get_by_role("button", name="Add occurrence").click()
    assert "calendar date" in page.locator("#chart-error").inner_text()
    assert_friendly(page)
    page.get_by_role("link", name="Chronology").click()

    # Annotate the injury.
    injury = page.locator("#annotation-target option", has_text="Occurrence 2024-03-15").get_attribute("value")
    page.get_by_label("About").select_option(injury)
    page.get_by_label("Annotation").fill("Patient reports dizziness before the fall")
    page.get_by_role("button", name="Add annotation").click()
    assert "Patient reports dizziness" in _rows(page, "occurrences")[1]

    # Incident date: before / after split.
    page.get_by_label("Incident date").fill("2024-03-15")
    page.get_by_role("button", name="Show chronology").click()
    assert len(_rows(page, "before")) == 1 and "GP visit" in _rows(page, "before")[0]
    after = _rows(page, "after")
    assert len(after) == 2 and "Fell down" in after[0]
    assert page.get_by_label("Incident date").input_value() == "2024-03-15"
    shot(page, "chart-chronology-incident")

    # CSV download through a POST form, with the incident split.
    with page.expect_download() as info:
        page.get_by_role("button", name="Download CSV").click()
    target = tmp_path / "chronology.csv"
    info.value.save_as(target)
    text = target.read_text()
    assert text.startswith("section,date,approximate,type")
    assert re.search(r"^before,2024-01-10,", text, re.M) and re.search(r"^after,2024-06-02,", text, re.M)
    assert re.search(r"^gap,", text, re.M)


def test_statements_compare_and_mark(new_page, server, charter):
    """Two witness statements compare fact by fact and word by word with their markup escaped and are marked as
    contradicting; comparing one alone is refused with a message on the page."""
    page = new_page()
    sign_in(page, server, "nadia", PASSWORD)
    page.goto(f"{server.base}/chart/statements")
    for witness, text in (
        ("Ana", "I saw her fall at 9pm near the <script>door</script>."),
        ("Ben", "I saw her fall at 11pm near the window."),
    ):
        page.get_by_label("Witness").fill(witness)
        page.get_by_label("Date").fill("2024-03-16")
        page.get_by_label("Statement text").fill(text)
        page.get_by_role("button", name="Add statement").click()
        assert page.locator("#chart-notice").inner_text() == "Statement added."
    page.get_by_label("Ana").check()
    page.get_by_label("Ben").check()
    page.get_by_role("button", name="Compare selected").click()
    time = page.locator('#facts tr[data-fact="time"]').inner_text().split()
    assert time == ["Time", "21:00", "23:00", "differ"], "the facts side by side, one column per witness"
    diff = page.locator("#diff-1")
    assert diff.locator("del").first.inner_text() == "9pm"
    assert diff.locator("ins").first.inner_text() == "11pm"
    assert "<script>door</script>." in diff.inner_text() and diff.locator("script").count() == 0
    page.get_by_label("contradict each other").check()
    page.get_by_label("Topic").fill("time of the fall")
    page.get_by_label("Note", exact=True).fill("Two hours apart")
    page.get_by_role("button", name="Mark").click()
    assert page.locator("#chart-notice").inner_text() == "Marked as contradiction."
    assert "Contradiction: time of the fall" in page.locator("#marks").inner_text()
    shot(page, "chart-statements-compare")

    # Comparing one statement only is refused with a message, not an error page.
    page.goto(f"{server.base}/chart/statements")
    page.get_by_label("Ana").check()
    page.get_by_role("button", name="Compare selected").click()
    assert "2 to 5" in page.locator("#chart-error").inner_text()
    assert_friendly(page)


def test_professionals_merge_and_phone(new_page, server, charter):
    """"Dr. J. Smith" is grouped with "John Smith, MD" without asking while he is the only J. Smith; once a Jane
    Smith appears it is a suggestion, merged when confirmed; and the chart page renders on a phone."""
    page = new_page()
    sign_in(page, server, "nadia", PASSWORD)
    page.goto(f"{server.base}/chart/professionals")
    assert page.locator("#no-suggestions").is_visible()
    rows = page.locator("#professionals tbody tr")
    assert rows.count() == 1 and "Dr. J. Smith" in rows.first.inner_text()
    with server.client() as api:
        login = api.post("/api/v1/login", json={"username": "nadia", "password": PASSWORD})
        api.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        add_entry(api, "occurrence", {"type": "encounter", "date": "2024-07-01", "providers": ["Jane Smith, RN"]})
    page.goto(f"{server.base}/chart/professionals")
    assert "Dr. J. Smith and John Smith, MD" in page.locator("#suggestions").inner_text()
    shot(page, "chart-professionals")
    page.get_by_role("button", name="Same person: Dr. J. Smith and John Smith, MD").click()
    assert page.locator("#chart-notice").inner_text() == "Decision recorded."
    assert page.locator("#no-suggestions").is_visible()
    rows = page.locator("#professionals tbody tr")
    assert rows.count() == 2 and "Dr. J. Smith" in page.locator("#professionals").inner_text()

    phone = new_page(viewport=PHONE)
    sign_in(phone, server, "nadia", PASSWORD)
    phone.goto(f"{server.base}/chart")
    shot(phone, "phone-chart")


def test_facilities_grouped_merged_and_shown_in_the_chronology(new_page, server):
    """Two spellings of St. Mary's Hospital are one facility on the facilities page, the medical center only a
    suggestion; confirming it makes the chronology's facility filter find all three records, each shown under
    the facility's name with its own spelling beside it."""
    person = server.account("farah", password=PASSWORD)
    spellings = {"ED note": "St. Mary's Hosp.", "Discharge": "Saint Marys Hospital", "MRI": "St. Mary's Medical Center"}
    for title, facility in spellings.items():
        meta = {"title": title, "service_date": "2024-03-15", "facility": facility}
        assert upload(person["client"], b"note", f"{title}.txt", meta, "text/plain").status_code == 201
    page = new_page()
    sign_in(page, server, "farah", PASSWORD)
    page.goto(f"{server.base}/chart/facilities")
    rows = page.locator("#facilities tbody tr")
    assert rows.count() == 2
    assert "St. Mary's Hosp." in page.locator("#facilities").inner_text()  # listed as the other spelling
    suggested = "Same facility: Saint Marys Hospital and St. Mary's Medical Center"
    shot(page, "chart-facilities")
    page.get_by_role("button", name=suggested).click()
    assert page.locator("#chart-notice").inner_text() == "Decision recorded."
    assert page.locator("#no-suggestions").is_visible() and rows.count() == 1

    page.goto(f"{server.base}/chart")
    page.fill("#chrono-facility", "st marys hospital")
    page.get_by_role("button", name="Show chronology").click()
    candidates = page.locator("#candidates li")
    assert candidates.count() == 3
    text = page.locator("#candidates").inner_text()
    for spelling in ("Saint Marys Hospital", "St. Mary's Hosp."):  # the form keeps the last name it lists
        assert f"St. Mary's Medical Center (as written: {spelling})" in text
    assert_friendly(page)
