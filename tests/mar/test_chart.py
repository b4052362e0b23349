"""The chart workspace over the real API: entries written by the patient and by specialists with the right,
signed and sealed; the chronology (incident split, gaps, candidates, CSV); injuries with their links; witness
statements compared word by word; standards of care; professionals; refusals; keys following the shares."""

from __future__ import annotations

import csv
import datetime as dt
import io
import sqlite3
import time
import uuid

import pytest

from medvault.mar.fhir import ExportedRecord, Person, chart_bundle
from tests.support import upload

ENTRIES = "/api/v1/charts/entries"


@pytest.fixture(scope="module")
def chart(server):
    people = {
        "pat": server.account("chpat"),
        "doc": server.account("chdoc", role="specialist"),
        "reader": server.account("chread", role="specialist"),
        "stranger": server.account("chstranger", role="specialist"),
        "other": server.account("chother"),
    }
    pat = people["pat"]["client"]
    meta = [
        {"title": "ER visit", "service_date": "2024-01-10", "facility": "St. Mary", "provider": ["Dr. J. Smith"]},
        {"title": "Ortho follow-up", "service_date": "2024-04-20", "facility": "General", "provider": "John Smith, MD"},
        {"title": "Physio", "service_date": "2024-05", "facility": "General", "provider": ["Jane Smith"]},
        {"title": "Undated letter", "provider": ["Dr. Ada Lovelace"]},
    ]
    rids = [upload(pat, f"record {i}".encode(), f"r{i}.pdf", m).json()["id"] for i, m in enumerate(meta)]
    witness = "I saw the blue car hit him at 9pm on Main Street near the bakery ."
    rids.append(upload(pat, witness.encode(), "w.txt", {"title": "Witness B"}, "text/plain").json()["id"])
    doc_share = pat.post("/api/v1/shares", json={"specialist": "chdoc", "chart": True, "access": "annotate"})
    read_share = pat.post("/api/v1/shares", json={"specialist": "chread", "records": [rids[0]]})
    assert doc_share.status_code == 201 and read_share.status_code == 201
    people.update(rids=rids, doc_share=doc_share.json()["id"], server=server)
    return people


def _add(client, kind, data, patient="chpat", status=201):
    response = client.post(ENTRIES, json={"patient": patient, "kind": kind, "data": data})
    assert response.status_code == status, response.text
    return response.json()


def _count(client, patient="chpat") -> int:
    return len(client.post(f"{ENTRIES}/list", json={"patient": patient}).json()["items"])


def test_entries_are_signed_and_show_their_author(chart):
    """The patient and an annotating specialist write; both read each other's entries with valid signatures;
    an entry without a citation is unverified, and so is one quoting a record without text (level "unchecked")."""
    pat, doc = chart["pat"]["client"], chart["doc"]["client"]
    mine = _add(pat, "occurrence", {"type": "note", "date": "2023-11-02", "description": "Felt dizzy"}, patient=None)
    theirs = _add(
        doc,
        "annotation",
        {
            "record": chart["rids"][0],
            "text": "Triage note is incomplete",
            "citations": [{"record": chart["rids"][0], "pages": "3-4", "quote": "no imaging"}],
        },
    )
    assert (mine["author"], mine["verified"], theirs["author"], theirs["verified"]) == ("chpat", False, "chdoc", False)
    seen = {e["id"]: e for e in doc.post(f"{ENTRIES}/list", json={"patient": "chpat"}).json()["items"]}
    mine_seen = pat.post(f"{ENTRIES}/list", json={"patient": "me"}).json()["items"]
    assert seen[mine["id"]]["author"] == "chpat" and seen[mine["id"]]["signature_valid"] is True
    assert {e["id"] for e in mine_seen} >= {mine["id"], theirs["id"]}
    assert all(e["signature_valid"] for e in mine_seen)
    assert seen[theirs["id"]]["data"]["citations"] == [
        {"record": chart["rids"][0], "pages": "3-4", "quote": "no imaging", "check": "unchecked"}
    ]


def test_chronology_incident_gaps_candidates_and_csv(chart):
    """Occurrences sort by date with their precision, split around the incident; gaps over 30 days in care
    (entries and records' dates together, from the incident) are flagged; records with a date of service no
    occurrence cites are candidates, undated ones listed; the CSV carries the same rows."""
    pat, doc = chart["pat"]["client"], chart["doc"]["client"]
    r = chart["rids"]
    a = _add(
        pat,
        "occurrence",
        {
            "type": "encounter",
            "date": "2024-01-10",
            "facility": "St. Mary",
            "providers": ["Dr. J. Smith"],
            "description": "ER",
            "citations": [{"record": r[0]}],
        },
    )
    b = _add(doc, "occurrence", {"type": "diagnosis", "date": "2024-03", "description": "Fracture suspected"})
    c = _add(pat, "occurrence", {"type": "procedure", "date": "2024-06-01", "provider": "Dr. Ada Lovelace"})
    body = {"patient": "chpat", "incident": "2024-03-15", "from": "2024"}
    result = doc.post("/api/v1/charts/chronology", json=body)
    assert result.status_code == 200, result.text
    result = result.json()
    ids = {k: [e["id"] for e in result[k]] for k in ("before", "around", "after")}
    assert ids == {"before": [a["id"]], "around": [b["id"]], "after": [c["id"]]}
    assert result["around"][0]["data"]["approximate"] is True
    gaps = [(g["from"], g["to"], g["days"]) for g in result["gaps"]]
    assert gaps == [], "from the incident on, the records' dates (April, May) fill what the entries leave"
    whole = doc.post("/api/v1/charts/chronology", json={"patient": "chpat", "from": "2024"}).json()
    assert [(g["from"], g["to"], g["days"]) for g in whole["gaps"]] == [("2024-01-11", "2024-02-29", 50)]
    assert [u["record"] for u in whole["undated"]] == [r[4], r[3]], "no date anywhere: listed, not left out"
    candidates = [c["record"] for c in result["candidates"]]
    assert candidates == [r[1], r[2]], "r0 is cited, r3 has no date of service"
    only = doc.post("/api/v1/charts/chronology", json={"patient": "chpat", "types": ["procedure"], "gap_days": 5})
    assert [e["id"] for e in only.json()["occurrences"]] == [c["id"]]
    by_provider = pat.post("/api/v1/charts/chronology", json={"provider": "dr. j. smith", "from": "2024"}).json()
    assert [e["id"] for e in by_provider["occurrences"]] == [a["id"]]
    exported = doc.post("/api/v1/charts/chronology.csv", json=body)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(row["section"], row["date"]) for row in rows if row["section"] != "gap"] == [
        ("before", "2024-01-10"),
        ("around", "2024-03"),
        ("after", "2024-06-01"),
    ]
    assert rows[0]["verified"] == "yes" and rows[1]["verified"] == "no" and rows[0]["author"] == "chpat"


def test_csv_cells_are_not_formulas(chart):
    """A chronology CSV cell starting with '=' is prefixed with a quote, so a spreadsheet shows it as text."""
    pat = chart["pat"]["client"]
    _add(pat, "occurrence", {"type": "note", "date": "1999-02-03", "description": "=HYPERLINK(1)"}, patient=None)
    text = pat.post("/api/v1/charts/chronology.csv", json={"to": "1999"}).text
    assert "'=HYPERLINK(1)" in text


def test_read_only_share_reads_but_cannot_write(chart):
    """A read share opens the chart; writing is a 403 that says why; no share at all is a 403 too."""
    reader, stranger, pat = chart["reader"]["client"], chart["stranger"]["client"], chart["pat"]["client"]
    assert reader.post(f"{ENTRIES}/list", json={"patient": "chpat"}).status_code == 200
    refused = reader.post(
        ENTRIES, json={"patient": "chpat", "kind": "annotation", "data": {"record": chart["rids"][0], "text": "mine"}}
    )
    assert refused.status_code == 403 and "annotate" in refused.json()["detail"]
    for who in ("chpat", "chother", "nobody"):
        response = stranger.post(f"{ENTRIES}/list", json={"patient": who})
        assert response.status_code == 403 and response.json()["detail"]
    assert pat.post(f"{ENTRIES}/list", json={"patient": "chother"}).status_code == 403
    assert stranger.post(f"{ENTRIES}/list", json={"patient": None}).status_code == 400


def test_bad_input_is_refused_and_nothing_written(chart):
    """Unknown fields, future or malformed dates, foreign or bad citations, dangling links and bad chronology options
    are refused with a reason, a patient writing a standard gets 403, and no entry is written."""
    pat, doc, other = chart["pat"]["client"], chart["doc"]["client"], chart["other"]["client"]
    foreign = upload(other, b"not yours", "x.pdf", {"service_date": "2024-01-01"}).json()["id"]
    occ = {"type": "encounter", "date": "2024-02-02"}
    before = _count(pat, None)
    cases = [
        ("occurrence", {**occ, "colour": "red"}),
        ("occurrence", {**occ, "date": "2999-01-01"}),
        ("occurrence", {**occ, "date": "2024-02-30"}),
        ("occurrence", {**occ, "date": "24-2-2"}),
        ("occurrence", {**occ, "date": "2024-02", "approximate": False}),
        ("occurrence", {**occ, "type": "gossip"}),
        ("occurrence", {**occ, "description": "x" * 20_001}),
        ("occurrence", {**occ, "citations": [{"record": foreign}]}),
        ("occurrence", {**occ, "citations": [{"record": "not-an-id"}]}),
        ("occurrence", {**occ, "citations": [{"record": chart["rids"][0], "pages": "three"}]}),
        ("occurrence", {**occ, "citations": [{"record": chart["rids"][0], "page": "3"}]}),
        ("injury", {"date": "2024-02-02", "occurrences": ["00000000-0000-0000-0000-000000000000"]}),
        ("annotation", {"text": "about nothing"}),
        ("statement", {"witness": "W", "date": "2024-01-01"}),
        ("mark", {"statements": [chart["rids"][0]], "verdict": "agreement", "note": "x"}),
        ("diary", {}),
        ("occurrence", "not an object"),
    ]
    for kind, data in cases:
        response = pat.post(ENTRIES, json={"kind": kind, "data": data})
        assert response.status_code == 400 and response.json()["detail"], (kind, data, response.text)
    assert pat.post(ENTRIES, json={"kind": "note", "data": {}, "extra": 1}).status_code == 400
    assert pat.post(ENTRIES, content=b"{not json").status_code == 400
    assert (
        pat.post(
            ENTRIES,
            json={
                "kind": "standard",
                "data": {"record": chart["rids"][0], "standard": {"source": "NICE"}, "status": "met"},
            },
        ).status_code
        == 403
    )
    assert (
        doc.post(
            ENTRIES,
            json={"patient": "chpat", "kind": "occurrence", "data": {**occ, "citations": [{"record": foreign}]}},
        ).status_code
        == 400
    )
    assert doc.post("/api/v1/charts/chronology", json={"patient": "chpat", "gap_days": 0}).status_code == 400
    assert doc.post("/api/v1/charts/chronology", json={"patient": "chpat", "incident": "2024"}).status_code == 400
    assert doc.post("/api/v1/charts/chronology", json={"patient": "chpat", "when": "now"}).status_code == 400
    assert _count(pat, None) == before


def test_injury_with_everything_linked(chart):
    """An injury links occurrences and notes; its view shows them, the annotations on them and cited records."""
    pat, doc = chart["pat"]["client"], chart["doc"]["client"]
    fall = _add(
        pat,
        "occurrence",
        {
            "type": "injury",
            "date": "2024-03-15",
            "description": "Fall on ice",
            "citations": [{"record": chart["rids"][1]}],
        },
    )
    note = _add(pat, "annotation", {"occurrence": fall["id"], "text": "Street not gritted"})
    injury = _add(
        doc,
        "injury",
        {
            "date": "2024-03-15",
            "body_site": "left wrist",
            "mechanism": "fall",
            "severity": "moderate",
            "occurrences": [fall["id"]],
            "notes": [note["id"]],
        },
    )
    about = _add(doc, "annotation", {"occurrence": injury["id"], "text": "Consistent with a fall"})
    view = pat.get(f"{ENTRIES}/{injury['id']}")
    assert view.status_code == 200, view.text
    view = view.json()
    assert view["entry"]["data"]["body_site"] == "left wrist"
    assert {e["id"] for e in view["linked"]} == {fall["id"], note["id"], about["id"]}
    assert [r["id"] for r in view["records"]] == [chart["rids"][1]]
    assert chart["stranger"]["client"].get(f"{ENTRIES}/{injury['id']}").status_code == 404
    assert pat.get(f"{ENTRIES}/00000000-0000-0000-0000-000000000000").status_code == 404
    assert pat.get(f"{ENTRIES}/nope").status_code == 404


def test_witness_statements_compared_word_by_word(chart):
    """Two statements that disagree on time and place: the differences are replace segments; a contradiction
    mark is shown with the comparison; a statement from a PDF without readable text has none to compare."""
    doc = chart["doc"]["client"]
    a = _add(
        doc,
        "statement",
        {
            "witness": "Witness A",
            "date": "2024-03-16",
            "text": "I saw the blue car hit him at 11pm on Oak Road near the bakery .",
        },
    )
    b = _add(doc, "statement", {"witness": "Witness B", "date": "2024-03-17", "record": chart["rids"][4]})
    assert b["data"]["text"].startswith("I saw") and b["verified"] is True
    mark = _add(
        doc,
        "mark",
        {"statements": [a["id"], b["id"]], "verdict": "contradiction", "topic": "time", "note": "11pm vs 9pm"},
    )
    result = doc.post("/api/v1/charts/statements/compare", json={"patient": "chpat", "statements": [a["id"], b["id"]]})
    assert result.status_code == 200, result.text
    (pair,) = result.json()["pairs"]
    changed = [(s["a"], s["b"]) for s in pair["segments"] if s["op"] == "replace"]
    assert changed == [("11pm", "9pm"), ("Oak Road", "Main Street")]
    assert pair["segments"][0] == {
        "op": "equal",
        "a": "I saw the blue car hit him at",
        "b": "I saw the blue car hit him at",
    }
    assert [m["id"] for m in result.json()["marks"]] == [mark["id"]]
    pdf = _add(doc, "statement", {"witness": "Witness C", "date": "2024", "record": chart["rids"][3]})
    assert pdf["data"]["text_available"] is False
    refused = doc.post(
        "/api/v1/charts/statements/compare", json={"patient": "chpat", "statements": [a["id"], pdf["id"]]}
    )
    assert refused.status_code == 400 and "text" in refused.json()["detail"]
    assert (
        doc.post("/api/v1/charts/statements/compare", json={"patient": "chpat", "statements": [a["id"]]}).status_code
        == 400
    )


def test_standards_checklist(chart):
    """Standards a specialist notes on a record and on an occurrence are counted by status and listed under their
    target, with the author's valid signature."""
    doc, pat = chart["doc"]["client"], chart["pat"]["client"]
    occ = _add(pat, "occurrence", {"type": "test-result", "date": "2024-01-11", "description": "X-ray"})
    std = {"source": "NICE NG38", "clause": "1.2.1", "text": "Image within 1 hour"}
    _add(doc, "standard", {"record": chart["rids"][0], "standard": std, "status": "not-met", "note": "3 h wait"})
    _add(doc, "standard", {"occurrence": occ["id"], "standard": {"source": "Trust policy"}, "status": "met"})
    result = pat.post("/api/v1/charts/standards", json={}).json()
    assert result["totals"] == {"met": 1, "not-met": 1, "unclear": 0}
    first = next(t for t in result["targets"] if t["target"] == "record")
    assert first["id"] == chart["rids"][0] and first["items"][0]["clause"] == "1.2.1"
    assert first["items"][0]["author"] == "chdoc" and first["items"][0]["signature_valid"] is True


def test_professionals_and_merge_decisions(chart):
    """Providers from records and occurrences plus the registered specialist; "Dr. J. Smith" and
    "John Smith, MD" are suggested as one person, "Jane Smith" and "John Smith, MD" not; a decision sticks."""
    pat = chart["pat"]["client"]
    result = pat.post("/api/v1/charts/professionals", json={}).json()
    names = {p["name"]: p for p in result["professionals"]}
    assert {"Dr. J. Smith", "John Smith, MD", "Jane Smith", "Dr. Ada Lovelace", "chdoc"} <= set(names)
    assert names["John Smith, MD"]["profession"] == "physician" and names["chdoc"]["registered"] is True
    assert names["Dr. J. Smith"]["facilities"] == ["St. Mary"] and chart["rids"][0] in names["Dr. J. Smith"]["records"]
    pairs = {frozenset(s["names"]) for s in result["suggestions"]}
    assert frozenset(("Dr. J. Smith", "John Smith, MD")) in pairs
    assert frozenset(("Jane Smith", "John Smith, MD")) not in pairs
    merged = pat.post(
        "/api/v1/charts/professionals/merge",
        json={"names": ["Dr. J. Smith", "John Smith, MD"], "decision": "same", "canonical": "John Smith, MD"},
    )
    assert merged.status_code == 201 and merged.json()["kind"] == "merge"
    assert pat.post("/api/v1/charts/professionals/merge", json={"names": ["x"], "decision": "same"}).status_code == 400
    after = pat.post("/api/v1/charts/professionals", json={}).json()
    assert frozenset(("Dr. J. Smith", "John Smith, MD")) not in {frozenset(s["names"]) for s in after["suggestions"]}
    smith = next(p for p in after["professionals"] if "John Smith, MD" in [p["name"], *p["aliases"]])
    assert (smith["name"], smith["aliases"]) == ("John Smith, MD", ["Dr. J. Smith"])
    assert set(smith["records"]) == {chart["rids"][0], chart["rids"][1]}


def test_revoked_or_expired_share_ends_chart_access(chart):
    """The chart key copy goes with the share: revoked at once, expired at once (checked at read time)."""
    pat, stranger = chart["pat"]["client"], chart["stranger"]["client"]
    share = pat.post("/api/v1/shares", json={"specialist": "chstranger", "chart": True, "access": "annotate"}).json()
    assert stranger.post(f"{ENTRIES}/list", json={"patient": "chpat"}).status_code == 200
    assert pat.delete(f"/api/v1/shares/{share['id']}").status_code == 204
    assert stranger.post(f"{ENTRIES}/list", json={"patient": "chpat"}).status_code == 403
    with sqlite3.connect(chart["server"].data_dir / "medvault.db") as db:
        assert db.execute("SELECT count(*) FROM chart_keys WHERE share_id = ?", (share["id"],)).fetchone() == (0,)
    short = pat.post("/api/v1/shares", json={"specialist": "chstranger", "chart": True, "expires_in_days": 2 / 86400})
    assert stranger.post(f"{ENTRIES}/list", json={"patient": "chpat"}).status_code == 200
    assert short.status_code == 201
    time.sleep(2.5)
    assert stranger.post(f"{ENTRIES}/list", json={"patient": "chpat"}).status_code == 403


def test_share_without_a_chart_key_is_caught_up_when_the_patient_opens_the_chart(chart):
    """A share made before charts existed has no copy: the specialist is told, the patient's next visit wraps it."""
    pat, doc = chart["pat"]["client"], chart["doc"]["client"]
    with sqlite3.connect(chart["server"].data_dir / "medvault.db") as db:
        db.execute("DELETE FROM chart_keys WHERE share_id = ?", (chart["doc_share"],))
    waiting = doc.post(f"{ENTRIES}/list", json={"patient": "chpat"})
    assert waiting.status_code == 409 and "open their chart" in waiting.json()["detail"]
    assert pat.post(f"{ENTRIES}/list", json={}).status_code == 200
    assert doc.post(f"{ENTRIES}/list", json={"patient": "chpat"}).status_code == 200


def test_tampered_entry_is_flagged(chart, server):
    """An entry whose sealed bytes were altered in the database is listed flagged as failing its integrity check, with
    an invalid signature and none of its data."""
    pat = chart["pat"]["client"]
    entry = _add(pat, "occurrence", {"type": "note", "date": "2020", "description": "to be tampered"}, patient=None)
    with sqlite3.connect(server.data_dir / "medvault.db") as db:
        (sealed,) = db.execute("SELECT sealed FROM chart_entries WHERE id = ?", (entry["id"],)).fetchone()
        db.execute(
            "UPDATE chart_entries SET sealed = ? WHERE id = ?", (sealed[:-1] + bytes([sealed[-1] ^ 1]), entry["id"])
        )
    items = {e["id"]: e for e in pat.post(f"{ENTRIES}/list", json={}).json()["items"]}
    assert items[entry["id"]]["signature_valid"] is False and "integrity" in items[entry["id"]]["error"]
    assert "data" not in items[entry["id"]]


def test_annotating_enters_the_patients_audit_trail(chart):
    """A specialist's annotation on a record enters the patient's audit trail as that specialist's "annotate"."""
    pat, doc = chart["pat"]["client"], chart["doc"]["client"]
    _add(doc, "annotation", {"record": chart["rids"][2], "text": "Physio plan reasonable"})
    trail = [
        (e["who"], e["action"]) for e in pat.get("/api/v1/audit").json()["items"] if e["record_id"] == chart["rids"][2]
    ]
    assert ("chdoc", "annotate") in trail


def test_chart_round_trip_on_each_database(any_db_server):
    """Keys, entries, links and the chronology work the same on SQLite and PostgreSQL."""
    pat = any_db_server.account("dbpat")["client"]
    doc = any_db_server.account("dbdoc", role="specialist")["client"]
    rid = upload(pat, b"r", "r.pdf", {"service_date": "2024-02-02", "provider": ["Dr. A. B"]}).json()["id"]
    assert (
        pat.post("/api/v1/shares", json={"specialist": "dbdoc", "chart": True, "access": "annotate"}).status_code == 201
    )
    occ = _add(doc, "occurrence", {"type": "encounter", "date": "2024-02-02", "citations": [{"record": rid}]}, "dbpat")
    _add(pat, "annotation", {"occurrence": occ["id"], "text": "ok"}, patient=None)
    result = pat.post("/api/v1/charts/chronology", json={}).json()
    assert [e["id"] for e in result["occurrences"]] == [occ["id"]] and result["candidates"] == []
    assert result["occurrences"][0]["signature_valid"] is True
    assert len(pat.get(f"{ENTRIES}/{occ['id']}").json()["linked"]) == 1
    assert doc.post("/api/v1/charts/professionals", json={"patient": "dbpat"}).status_code == 200


def test_every_record_counts_beyond_the_first_500(server):
    """A chart of 600 records (made by one FHIR import): the chronology proposes every dated record no occurrence
    cites and the professionals include the oldest record's provider, for the patient and for a specialist."""
    pat = server.account("bigpat")["client"]
    doc = server.account("bigdoc", role="specialist")["client"]
    patient = Person(str(uuid.uuid4()), "bigpat", "patient")
    records = [
        ExportedRecord(
            str(uuid.uuid4()),
            {
                "title": f"Visit {n}",
                "service_date": (dt.date(2010, 1, 1) + dt.timedelta(days=5 * n)).isoformat(),
                "provider": ["Dr. Oldest Only"] if n == 0 else [f"Dr. {'ABCDE'[n % 5]}. Jones"],
                "confidentiality": "normal",
                "filename": f"visit{n}.txt",
                "content_type": "text/plain",
            },
            1_700_000_000 + n,
            patient,
            f"visit {n}".encode(),
        )
        for n in range(600)
    ]
    imported = pat.post("/api/v1/import/fhir", json=chart_bundle(patient, records, now=1_700_001_000))
    assert imported.status_code == 201 and imported.json()["count"] == 600, imported.text
    ids = imported.json()["ids"]
    shared = pat.post("/api/v1/shares", json={"specialist": "bigdoc", "chart": True, "access": "annotate"})
    assert shared.status_code == 201, shared.text
    occurrence = {"type": "encounter", "date": "2018-03-01", "citations": [{"record": ids[-1]}]}
    cited = _add(pat, "occurrence", occurrence, patient=None)
    for client, name in ((pat, None), (doc, "bigpat")):
        result = client.post("/api/v1/charts/chronology", json={"patient": name}).json()
        assert [o["id"] for o in result["occurrences"]] == [cited["id"]]
        assert {c["record"] for c in result["candidates"]} == set(ids[:-1])
        listing = client.post("/api/v1/charts/professionals", json={"patient": name}).json()["professionals"]
        oldest = next(p for p in listing if p["name"] == "Dr. Oldest Only")
        assert oldest["records"] == [ids[0]]
