"""Sharing in real browsers, a patient and a specialist side by side: share a record after comparing the key
fingerprint, the specialist opens it and sends a signed summary back, the patient reads it in the inbox and
sees the specialist's view in "Who saw my records", then revokes, and the record is gone for the specialist."""

from __future__ import annotations

import re
import time

import pytest

from tests.browser.conftest import PHONE, assert_friendly, shot, sign_in

PASSWORD = "a long sharing passphrase"
SUMMARY = "# Follow-up\n\n**Rest** for two weeks.\n<script>alert('x')</script> <b>not bold</b>\n"


@pytest.fixture(scope="module")
def people(server):
    server.account("hana", password=PASSWORD)
    code = server.invite("drcarter", "specialist", "--profession", "doctor")
    with server.client() as client:
        accepted = client.post("/api/v1/invitations/accept", json={"code": code, "password": PASSWORD})
        assert accepted.status_code == 201, accepted.text
    return {"patient": "hana", "specialist": "drcarter"}


def _no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_share_summary_audit_revoke(new_page, server, people):
    """A patient shares a ticked record after checking the specialist's key fingerprint; the specialist reads it and
    sends a summary shown as escaped text, the access log shows the view, and revoking ends the access."""
    started = time.monotonic()
    patient, doctor = new_page(), new_page()
    sign_in(patient, server, "hana", PASSWORD)
    sign_in(doctor, server, "drcarter", PASSWORD)
    assert doctor.url.endswith("/patients")  # a specialist lands on their patients
    patient.goto(f"{server.base}/records")

    # The patient uploads a letter; the specialist reads out the fingerprint on their account page.
    patient.locator("#file").set_input_files(
        [{"name": "ecg-report.txt", "mimeType": "text/plain", "buffer": b"ECG: sinus rhythm, 62 bpm"}]
    )
    patient.get_by_role("button", name="Upload").click()
    link = patient.get_by_role("link", name="ecg-report.txt")
    link.wait_for()
    record_id = link.get_attribute("href").rsplit("/", 1)[1]
    doctor.goto(f"{server.base}/account")
    doctor_fingerprint = doctor.locator(".fingerprint").inner_text().strip()
    assert doctor_fingerprint

    # Tick the record, then "Share selected…": the record comes pre-ticked, the fingerprint matches.
    patient.get_by_label("Select ecg-report.txt").check()
    shot(patient, "sharing-records-select")
    patient.get_by_role("button", name="Share selected…").click()
    patient.wait_for_url(re.compile(r"/share\?record="))
    assert patient.locator(f"#record-{record_id}").is_checked()
    shown = patient.locator('.fingerprint[data-specialist="drcarter"]').inner_text()
    assert shown.removeprefix("Key fingerprint:").strip() == doctor_fingerprint
    assert "Account" in patient.locator("#share-form").inner_text()  # the sentence asking to compare
    assert "doctor" in patient.locator("#share-form").inner_text()
    shot(patient, "sharing-share")
    patient.get_by_label("drcarter (doctor)").check()
    patient.get_by_label("Read and annotate").check()
    patient.get_by_label(re.compile("Ends after")).fill("30")
    patient.get_by_role("button", name="Share", exact=True).click()
    notice = patient.locator("#share-notice")
    assert "Shared 1 record with drcarter" in notice.inner_text()
    assert patient.locator("#share-fingerprint").inner_text().strip() == doctor_fingerprint
    row = patient.locator("table.shares tbody tr")
    assert row.count() == 1 and "Read and annotate" in row.inner_text()
    shot(patient, "sharing-my-shares")

    # The specialist sees the patient, their record, and opens it.
    doctor.get_by_role("link", name="Patients").click()
    doctor_row = doctor.locator("table.shares tbody tr")
    assert doctor_row.count() == 1
    assert re.search(r"hana\s+Chosen records\s+Read and annotate\s+1\s", doctor_row.inner_text())
    shot(doctor, "sharing-patients")
    doctor.get_by_role("link", name="hana").click()
    doctor.locator("#patient-records").get_by_role("link", name="ecg-report.txt").wait_for()
    shot(doctor, "sharing-patient-chart")
    doctor.get_by_role("link", name="ecg-report.txt").click()
    assert "ECG: sinus rhythm" in doctor.locator("#text-preview").inner_text()
    assert doctor.get_by_role("button", name=re.compile("^Delete")).count() == 0  # not the owner
    doctor.go_back()

    # A summary: the preview shows the Markdown as text, nothing of it runs or renders.
    doctor.get_by_role("link", name="Write a summary for hana").click()
    doctor.get_by_label("Title").fill("Cardiology follow-up")
    doctor.get_by_label("Summary (Markdown)").fill(SUMMARY)
    doctor.get_by_role("button", name="Preview").click()
    assert doctor.locator("#summary-preview").inner_text().strip() == SUMMARY.strip()
    assert doctor.locator("#summary-preview b").count() == 0 and doctor.locator("#summary-preview script").count() == 0
    assert doctor.get_by_label("Summary (Markdown)").input_value().strip() == SUMMARY.strip()
    shot(doctor, "sharing-summary-editor")
    doctor.get_by_role("button", name="Send to hana").click()
    assert "Summary sent to hana" in doctor.locator("#summary-notice").inner_text()

    # The patient's inbox: title, signer, valid signature; the record shows the Markdown as escaped text.
    patient.get_by_role("link", name="Inbox").click()
    entry = patient.locator("#inbox li")
    assert entry.count() == 1
    assert entry.locator(".signer").inner_text() == "drcarter"
    assert entry.locator(".signature").inner_text() == "signature valid"
    shot(patient, "sharing-inbox")
    entry.get_by_role("link", name="Cardiology follow-up").click()
    assert patient.locator("#signature").inner_text() == "signature valid"
    assert "drcarter" in patient.locator("dl.meta").inner_text()
    assert "<script>alert('x')</script> <b>not bold</b>" in patient.locator("#text-preview").inner_text()
    assert patient.locator("#text-preview b").count() == 0
    shot(patient, "sharing-summary-record")

    # Who saw my records: the specialist's view of the letter, by title.
    patient.get_by_role("link", name="Access log").click()
    assert patient.get_by_role("heading", name="Who saw my records").is_visible()
    audit = patient.locator("#audit tbody tr")
    rows = [audit.nth(i).inner_text() for i in range(audit.count())]
    assert any(re.search(r"drcarter\s+specialist\s+view\s+ecg-report\.txt", r) for r in rows), rows
    shot(patient, "sharing-audit")

    # Revoke: the specialist loses the patient and the record.
    patient.get_by_role("link", name="My shares").click()
    patient.get_by_role("button", name="Revoke share with drcarter").click()
    patient.wait_for_url(re.compile(r"/shares\?revoked=1"))
    assert patient.locator("table.shares").count() == 0
    shot(patient, "sharing-revoked")
    doctor.goto(f"{server.base}/patients")
    assert doctor.locator("table.shares").count() == 0
    assert doctor.goto(f"{server.base}/patients/hana").status == 404
    assert doctor.goto(f"{server.base}/records/{record_id}").status == 404
    assert_friendly(doctor)
    doctor.goto(f"{server.base}/records")
    assert doctor.get_by_role("link", name="ecg-report.txt").count() == 0
    print(f"share → summary → revoke in {time.monotonic() - started:.1f} s")


def test_phone_width_share_and_inbox(new_page, server, people):
    """At 375 px the share page and the inbox fit without sideways scrolling."""
    page = new_page(viewport=PHONE)
    sign_in(page, server, "hana", PASSWORD)
    page.goto(f"{server.base}/share")
    page.locator("#share-form").wait_for()
    _no_sideways_scroll(page)
    shot(page, "phone-sharing-share")
    page.goto(f"{server.base}/inbox")
    _no_sideways_scroll(page)
    shot(page, "phone-sharing-inbox")
    page.goto(f"{server.base}/audit")
    _no_sideways_scroll(page)
    shot(page, "phone-sharing-audit")


def test_share_form_errors_are_friendly(new_page, server, people):
    """Sharing nothing, or a chart slice with a bad date, answers on the form with a clear message."""
    page = new_page()
    sign_in(page, server, "hana", PASSWORD)
    page.goto(f"{server.base}/share")
    page.get_by_label("drcarter (doctor)").check()
    page.get_by_role("button", name="Share", exact=True).click()
    assert "Choose at least one record" in page.locator("#share-error").inner_text()
    page.get_by_label(re.compile("My whole chart")).check()
    page.get_by_label(re.compile("^From")).fill("March 2024")
    page.get_by_role("button", name="Share", exact=True).click()
    assert "YYYY" in page.locator("#share-error").inner_text()
    assert page.get_by_label(re.compile("My whole chart")).is_checked()  # the form keeps what was chosen
    assert_friendly(page)
