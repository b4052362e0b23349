"""One story across the product, a patient and a specialist in two browsers: the patient uploads a letter and
two witness statements and shares the whole chart with annotation rights; the specialist adds an occurrence
citing the letter, compares the statements, notes a standard of care and sends a summary; the patient sees the
occurrence in their chronology, the signed summary in the inbox and the specialist in the access log."""

from __future__ import annotations

import re
import time

import pytest

from tests.browser.conftest import assert_friendly, shot, sign_in

PASSWORD = "a long story passphrase"
FILES = [
    ("clinic-letter.txt", b"Seen in clinic after the fall. Wrist swollen."),
    ("witness-ana.txt", b"She slipped on the wet floor at 9pm by the lift."),
    ("witness-ben.txt", b"She slipped on the dry floor at 10pm by the lift."),
]


@pytest.fixture(scope="module")
def people(server):
    server.account("petra", password=PASSWORD)
    code = server.invite("drlee", "specialist", "--profession", "doctor")
    with server.client() as client:
        accepted = client.post("/api/v1/invitations/accept", json={"code": code, "password": PASSWORD})
        assert accepted.status_code == 201, accepted.text


def test_patient_and_specialist_story(new_page, server, people):
    """A patient shares the whole chart; the specialist adds a cited occurrence, compares and marks two witness
    statements, notes a standard and sends a summary, and the patient sees each of them and the access log."""
    started = time.monotonic()
    patient, doctor = new_page(), new_page()
    sign_in(patient, server, "petra", PASSWORD)
    sign_in(doctor, server, "drlee", PASSWORD)
    patient.goto(f"{server.base}/records")

    # The patient uploads three files and shares the whole chart, read and annotate.
    patient.locator("#file").set_input_files([{"name": n, "mimeType": "text/plain", "buffer": b} for n, b in FILES])
    patient.get_by_role("button", name="Upload").click()
    patient.get_by_role("link", name="witness-ben.txt").wait_for()
    patient.get_by_role("link", name="Share", exact=True).click()
    patient.get_by_label("drlee (doctor)").check()
    patient.get_by_label(re.compile("My whole chart")).check()
    patient.get_by_label("Read and annotate").check()
    patient.get_by_role("button", name="Share", exact=True).click()
    assert "drlee" in patient.locator("#share-notice").inner_text()

    # The specialist opens the chart and adds an occurrence citing the letter.
    doctor.get_by_role("link", name="Patients").click()
    doctor.get_by_role("link", name="petra").click()
    doctor.get_by_role("link", name="Open the chart of petra").click()
    doctor.wait_for_url(re.compile(r"/patients/petra/chart$"))
    assert doctor.locator("#read-only").count() == 0
    doctor.get_by_label("Type", exact=True).select_option("encounter")
    doctor.get_by_label("Date", exact=True).fill("2024-04-02")
    doctor.locator("#occ-facility").fill("Riverside Clinic")
    doctor.get_by_label("Providers (separate with ;)").fill("Dr. Okafor")
    doctor.locator("#occ-cite").select_option(label="clinic-letter.txt")
    doctor.get_by_label("Pages").first.fill("1")
    doctor.get_by_label("Description").fill("Wrist examined after the fall")
    doctor.get_by_role("button", name="Add occurrence").click()
    assert doctor.locator("#chart-notice").inner_text() == "Occurrence added."
    row = doctor.locator("tr.occurrence")
    assert row.count() == 1 and "clinic-letter.txt p. 1" in row.inner_text() and "verified" in row.inner_text()
    shot(doctor, "story-specialist-chronology")

    # Two witness statements read from the patient's text records, compared, and marked.
    doctor.get_by_role("link", name="Statements").click()
    for witness, record in (("Ana", "witness-ana.txt"), ("Ben", "witness-ben.txt")):
        doctor.get_by_label("Witness").fill(witness)
        doctor.get_by_label("Date").fill("2024-04-01")
        doctor.get_by_label("From a text record").select_option(label=record)
        doctor.get_by_role("button", name="Add statement").click()
        assert doctor.locator("#chart-notice").inner_text() == "Statement added."
    doctor.get_by_label("Ana").check()
    doctor.get_by_label("Ben").check()
    doctor.get_by_role("button", name="Compare selected").click()
    diff = doctor.locator("#diff-1")
    assert [diff.locator("del").nth(i).inner_text() for i in range(diff.locator("del").count())] == ["wet", "9pm"]
    assert [diff.locator("ins").nth(i).inner_text() for i in range(diff.locator("ins").count())] == ["dry", "10pm"]
    doctor.get_by_label("contradict each other").check()
    doctor.get_by_label("Topic").fill("floor and time")
    doctor.get_by_label("Note", exact=True).fill("Wet or dry floor; an hour apart")
    doctor.get_by_role("button", name="Mark").click()
    assert "Contradiction: floor and time" in doctor.locator("#marks").inner_text()
    shot(doctor, "story-specialist-compare")

    # A standard of care on the occurrence.
    doctor.get_by_role("link", name="Standards of care").click()
    doctor.get_by_label("Source").fill("NICE NG38")
    doctor.get_by_label("Clause").fill("1.2.1")
    doctor.get_by_label("Status").select_option("not-met")
    doctor.get_by_label("Standard text").fill("X-ray a suspected wrist fracture the same day")
    doctor.get_by_role("button", name="Add standard").click()
    assert doctor.locator("#chart-notice").inner_text() == "Standard added."
    assert "Not met: 1" in doctor.locator("#standards-totals").inner_text()
    assert "Wrist examined after the fall" in doctor.locator("#standards").inner_text()
    shot(doctor, "story-specialist-standards")

    # A summary back to the patient.
    doctor.get_by_role("link", name="← petra").click()
    doctor.get_by_role("link", name="Write a summary for petra").click()
    doctor.get_by_label("Title").fill("Fall review")
    doctor.get_by_label("Summary (Markdown)").fill("The two statements disagree; the wrist was not X-rayed.")
    doctor.get_by_role("button", name="Send to petra").click()
    assert "Summary sent to petra" in doctor.locator("#summary-notice").inner_text()

    # The patient: the specialist's occurrence in the chronology, the standard, the summary, the access log.
    patient.get_by_role("link", name="Chart", exact=True).click()
    row = patient.locator("tr.occurrence")
    assert row.count() == 1 and "Wrist examined after the fall" in row.inner_text() and "by drlee" in row.inner_text()
    shot(patient, "story-patient-chronology")
    patient.get_by_role("link", name="Standards of care").click()
    assert "NICE NG38" in patient.locator("#standards").inner_text()
    assert patient.locator("#standard-form").count() == 0  # standards are noted by specialists
    patient.get_by_role("link", name="Inbox").click()
    entry = patient.locator("#inbox li")
    assert entry.count() == 1 and "Fall review" in entry.inner_text()
    assert entry.locator(".signer").inner_text() == "drlee"
    assert entry.locator(".signature").inner_text() == "signature valid"
    shot(patient, "story-patient-inbox")
    patient.get_by_role("link", name="Access log").click()
    audit = patient.locator("#audit tbody tr")
    rows = [audit.nth(i).inner_text() for i in range(audit.count())]
    assert any(re.search(r"drlee\s+specialist\s+annotate\s+clinic-letter\.txt", r) for r in rows), rows
    shot(patient, "story-patient-access-log")
    assert_friendly(patient)
    assert_friendly(doctor)
    print(f"story in {time.monotonic() - started:.1f} s")
