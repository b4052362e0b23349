"""Chart entries at rest: no marker written into any kind of entry appears in any byte on disk (database,
blobs, logs, temp files), in any case; the chart tables hold only ids, times, kinds and ciphertext."""

from __future__ import annotations

import sqlite3

from tests.support import upload
from tests.vault.test_at_rest import _all_bytes_under

M = {
    name: f"QUAGGA-{name.upper()}-{i:04d}"
    for i, name in enumerate(
        ("desc", "facility", "provider", "site", "witness", "statement", "quote", "standard", "note", "merge")
    )
}


def test_no_chart_marker_anywhere_at_rest(server):
    pat = server.account("qpat")["client"]
    doc = server.account("qdoc", role="specialist")["client"]
    rid = upload(pat, b"plain record", "r.pdf", {"service_date": "2024-01-01"}).json()["id"]
    assert (
        pat.post("/api/v1/shares", json={"specialist": "qdoc", "chart": True, "access": "annotate"}).status_code == 201
    )

    def add(client, kind, data):
        response = client.post("/api/v1/charts/entries", json={"patient": "qpat", "kind": kind, "data": data})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    cite = [{"record": rid, "pages": "2", "quote": M["quote"]}]
    occ = add(
        pat,
        "occurrence",
        {
            "type": "encounter",
            "date": "2024-01-01",
            "facility": M["facility"],
            "providers": [M["provider"]],
            "description": M["desc"],
            "citations": cite,
        },
    )
    add(doc, "injury", {"date": "2024-01-01", "body_site": M["site"], "occurrences": [occ]})
    s1 = add(doc, "statement", {"witness": M["witness"], "date": "2024-01-02", "text": M["statement"] + " at 9pm"})
    s2 = add(doc, "statement", {"witness": "B", "date": "2024-01-02", "text": M["statement"] + " at 11pm"})
    add(doc, "mark", {"statements": [s1, s2], "verdict": "contradiction", "note": M["note"]})
    add(doc, "standard", {"occurrence": occ, "standard": {"source": M["standard"]}, "status": "unclear"})
    add(pat, "annotation", {"occurrence": occ, "text": M["note"]})
    merged = pat.post(
        "/api/v1/charts/professionals/merge", json={"names": [M["merge"], M["provider"]], "decision": "different"}
    )
    assert merged.status_code == 201 and merged.json()["data"]["names"][0] == M["merge"]
    for path in ("chronology", "chronology.csv", "professionals", "standards"):
        assert doc.post(f"/api/v1/charts/{path}", json={"patient": "qpat"}).status_code == 200
    files = _all_bytes_under(server.data_dir, server.tmp_dir)
    assert any(path.endswith("medvault.db") for path, _ in files)
    for path, data in files:
        for marker in M.values():
            assert marker.encode().lower() not in data.lower(), f"{marker} found in {path}"
    with sqlite3.connect(server.data_dir / "medvault.db") as db:
        columns = [c[1] for c in db.execute("PRAGMA table_info(chart_entries)")]
        assert columns == ["id", "patient_id", "kind", "author_id", "created_at", "sealed"]
        keys = [c[1] for c in db.execute("PRAGMA table_info(chart_keys)")]
        assert keys == ["patient_id", "reader_id", "via", "share_id", "wrapped", "granted_at"]
