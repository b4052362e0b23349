"""Extraction from a generated chart of 38 records (tests/mar/chartgen.py): the rules on their own, then the
whole flow over the real API, where a specialist reads the chart in batches, accepts in bulk with edits and
rejects, and the chronology shows gaps from the records and lists undated ones, with none of the chart's
words left in the data folder, the logs or any temporary folder."""

from __future__ import annotations

import os
import tempfile

import pytest

from medvault.mar import extraction, ocr, recordtext
from medvault.mar.pdftext import Pages
from tests.mar import chartgen
from tests.support import require_tool, upload
from tests.vault.test_at_rest import _all_bytes_under

PROPOSALS = "/api/v1/charts/proposals"
CHART_WORDS = (b"Riverside Orthopaedic", b"cervical strain", b"Aisha Patel", b"O'Brien", b"Jane Q. Sample")


@pytest.fixture(scope="module")
def records() -> list[chartgen.Record]:
    require_tool("tesseract")
    require_tool("pdftoppm")
    return chartgen.chart()


@pytest.fixture(scope="module")
def read(records) -> dict[str, tuple[Pages, extraction.Extracted]]:
    out = {}
    for record in records:
        pages = recordtext.of_content(record.content, record.content_type)
        out[record.name] = (pages, extraction.extract(pages))
    return out


def test_date_of_service_for_nine_in_ten_and_never_a_birth_date(records, read):
    dated = [r for r in records if r.service_date]
    assert len(records) >= 30 and len(dated) >= 30
    right = [r.name for r in dated if (found := read[r.name][1].date_of_service) and found.value == r.service_date]
    assert len(right) >= 0.9 * len(dated), sorted({r.name for r in dated} - set(right))
    proposed = {found.value for _, e in read.values() if (found := e.date_of_service)}
    assert chartgen.DOB.isoformat() not in proposed
    for record in dated:  # the date of birth is on the page, and read as one
        kinds = {d.kind for d in read[record.name][1].dates if d.value == chartgen.DOB.isoformat()}
        assert kinds <= {"birth"}, (record.name, kinds)


def test_the_scanned_pdf_is_read_by_ocr_in_a_folder_left_empty(records, read):
    scanned = next(r for r in records if r.scanned)
    pages, found = read[scanned.name]
    assert pages.ocr == (1,) and "Riverside Orthopaedic Clinic" in pages.text
    assert found.date_of_service.value == scanned.service_date
    before = set(os.listdir(tempfile.gettempdir()))
    assert ocr.pdf_pages(scanned.content, [1])[1]
    assert {n for n in set(os.listdir(tempfile.gettempdir())) - before if n.startswith("medvault-ocr")} == set()


def test_professionals_facilities_and_document_types(records, read):
    written = {name for r in records for name in r.people}
    found = {p.value for _, e in read.values() for p in e.providers}
    assert written <= found, written - found
    for record in records:
        extracted = read[record.name][1]
        if record.facility:
            assert extracted.facility and extracted.facility.value == record.facility, record.name
        if record.kind not in ("", "photo"):
            assert extracted.document and extracted.document.value == record.kind, record.name
    police = read["police-report.pdf"][1]
    assert police.facility.value == "Metro City Police Department"


def test_negation_is_not_a_finding():
    text = (
        "Reports neck pain. Denies loss of consciousness. No chest pain but reports headache. "
        "Fracture was ruled out. Mild swelling of the left wrist."
    )
    found = {f.value: f.kind for f in extraction.findings(text, 1)}
    assert found == {
        "neck pain": "present",
        "loss of consciousness": "negated",
        "chest pain": "negated",
        "headache": "present",
        "fracture": "negated",
        "mild swelling of the left wrist": "present",
    }


def test_dates_by_their_labels():
    text = (
        "Patient DOB: 07/02/1981    Date of Service: March 14, 2024\n"
        "Admission Date: 2024-04-10  Discharge Date: 2024-04-12\nFaxed 04/20/24\n"
    )
    kinds = [(d.value, d.kind, d.quote) for d in extraction.dates(text, 1)]
    assert kinds == [
        ("1981-07-02", "birth", "DOB: 07/02/1981"),
        ("2024-03-14", "service", "Date of Service: March 14, 2024"),
        ("2024-04-10", "admission", "Admission Date: 2024-04-10"),
        ("2024-04-12", "discharge", "Discharge Date: 2024-04-12"),
        ("2024-04-20", "other", "Faxed 04/20/24"),
    ]
    only_birth = extraction.extract(Pages(("Born 07/02/1981. Date of birth: 07/02/1981",), 1))
    assert only_birth.date_of_service is None


@pytest.fixture(scope="module")
def flow(server, records):
    patient = server.account("expat")
    doctor = server.account("exdoc", role="specialist")
    pat = patient["client"]
    ids = {}
    for record in records:
        made = upload(pat, record.content, record.name, {"title": record.name[:-4]}, record.content_type)
        assert made.status_code == 201, made.text
        ids[made.json()["id"]] = record
    share = pat.post("/api/v1/shares", json={"specialist": "exdoc", "chart": True, "access": "annotate"})
    assert share.status_code == 201, share.text
    return {"pat": pat, "doc": doctor["client"], "ids": ids, "server": server}


def test_reading_in_batches_accepting_and_rejecting(flow):
    doc, ids = flow["doc"], flow["ids"]
    body = {"patient": "expat"}
    assert doc.post(f"{PROPOSALS}/read", json={**body, "limit": 0}).status_code == 400
    forged = doc.post("/api/v1/charts/entries", json={**body, "kind": "proposal", "data": {}})
    assert forged.status_code == 400 and "reading the records" in forged.json()["detail"]
    progress = []
    for _ in range(10):  # 38 records, 10 a batch
        step = doc.post(f"{PROPOSALS}/read", json=body)
        assert step.status_code == 200, step.text
        progress.append(step.json()["remaining"])
        if not step.json()["remaining"]:
            break
    assert progress == [28, 18, 8, 0]
    assert doc.post(f"{PROPOSALS}/read", json=body).json()["read"] == 0, "nothing is read twice"
    items = doc.post(PROPOSALS, json=body).json()["items"]
    assert len(items) == len(ids)
    by_record = {p["data"]["record"]: p for p in items}
    right = sum(by_record[rid]["data"]["fields"].get("date") == r.service_date for rid, r in ids.items())
    assert right >= 0.9 * len(ids)
    for p in items:  # every citation of a proposal is on its page, also the scan's (by OCR)
        assert all(c["check"] == "page" for c in p["data"]["citations"]), p
    scan = next(p for rid, p in by_record.items() if ids[rid].scanned)
    assert scan["data"]["ocr"] is True and scan["data"]["fields"]["date"] == "2024-09-24"

    # Before anything is accepted, the records' dates make the gaps: only the planted one, from the incident.
    chrono = doc.post("/api/v1/charts/chronology", json={**body, "incident": "2024-03-01", "gap_days": 60}).json()
    assert [(g["from"], g["to"]) for g in chrono["gaps"]] == [("2024-04-11", "2024-09-23")]
    assert {u["title"] for u in chrono["undated"]} == {"photo-0", "photo-1", "photo-2"}
    assert len(chrono["proposed"]) == sum(1 for r in ids.values() if r.service_date)

    photo = next(p for rid, p in by_record.items() if ids[rid].kind == "photo")
    refused = doc.post(f"{PROPOSALS}/accept", json={**body, "proposals": [photo["id"]]})
    assert refused.status_code == 400 and "no date" in refused.json()["detail"]
    dated = [p["id"] for rid, p in by_record.items() if ids[rid].service_date]
    edits = {photo["id"]: {"date": "2024-03-01", "description": "Photo of the bruising"}}
    accepted = doc.post(f"{PROPOSALS}/accept", json={**body, "proposals": [*dated, photo["id"]], "edits": edits})
    assert accepted.status_code == 200, accepted.text
    assert len(accepted.json()["accepted"]) == len(dated) + 1
    again = doc.post(f"{PROPOSALS}/accept", json={**body, "proposals": [dated[0]]})
    assert again.status_code == 409
    rest = [p["id"] for p in items if p["id"] not in dated and p["id"] != photo["id"]]
    assert doc.post(f"{PROPOSALS}/reject", json={**body, "proposals": rest}).status_code == 200
    assert doc.post(PROPOSALS, json={**body, "status": "open"}).json()["items"] == []

    chrono = doc.post("/api/v1/charts/chronology", json={**body, "incident": "2024-03-01", "gap_days": 60}).json()
    occurrences = chrono["before"] + chrono["around"] + chrono["after"]
    assert len(occurrences) == len(dated) + 1
    assert [(g["from"], g["to"]) for g in chrono["gaps"]] == [("2024-04-11", "2024-09-23")]
    dated_photo = ids[photo["data"]["record"]].name[:-4]
    still = {"photo-0", "photo-1", "photo-2"} - {dated_photo}
    assert {u["title"] for u in chrono["undated"]} == still, "rejected, they stay listed as undated"
    scanned = next(
        e for e in occurrences if e["data"]["citations"][0]["record"] in {rid for rid, r in ids.items() if r.scanned}
    )
    assert scanned["data"]["facility"] == "Riverside Orthopaedic Clinic" and scanned["verified"]


def test_no_word_of_the_chart_at_rest_or_in_logs(flow):
    server = flow["server"]
    test_reading = flow["doc"].post(PROPOSALS, json={"patient": "expat"})
    assert test_reading.status_code == 200
    log = server.data_dir.parent / f"{server.data_dir.name}-server.log"
    for path, data in [*_all_bytes_under(server.data_dir, server.tmp_dir), (str(log), log.read_bytes())]:
        for word in CHART_WORDS:
            assert word.lower() not in data.lower(), (path, word)
    assert not [n for n in os.listdir(server.tmp_dir) if n.startswith("medvault-ocr")]
