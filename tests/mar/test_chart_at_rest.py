"""Chart entries at rest: no marker written into any kind of entry appears in any byte on disk (database,
blobs, logs, temp files), in any case; the chart tables hold only ids, times and ciphertext: not even an
entry's kind (that a patient has an "injury") is readable in the database."""

from __future__ import annotations

import os
import sqlite3

import pytest
import sqlalchemy as sa

from medvault.db.engine import make_engine, migrate
from medvault.mar.entries import KINDS
from tests.support import upload
from tests.vault.test_at_rest import _all_bytes_under

M = {
    name: f"QUAGGA-{name.upper()}-{i:04d}"
    for i, name in enumerate(
        ("desc", "facility", "provider", "site", "witness", "statement", "quote", "standard", "note", "merge", "edit")
    )
}


def test_no_chart_marker_anywhere_at_rest(server):
    """Markers written into every kind of chart entry, an edit and a merge appear in no byte on disk, and the chart
    tables show only ids, times and ciphertext, not even an entry's kind."""
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
    note = add(pat, "annotation", {"occurrence": occ, "text": "first"})
    edited = pat.put(f"/api/v1/charts/entries/{note}", json={"data": {"occurrence": occ, "text": M["edit"]}})
    assert edited.status_code == 200, edited.text
    merged = pat.post(
        "/api/v1/charts/professionals/merge", json={"names": [M["merge"], M["provider"]], "decision": "different"}
    )
    assert merged.status_code == 201 and merged.json()["data"]["names"][0] == M["merge"]
    upload(pat, b"another record", "r2.pdf", {})
    read = doc.post("/api/v1/charts/proposals/read", json={"patient": "qpat"})  # a proposal, read from the record
    assert read.status_code == 200 and read.json()["read"] == 1, read.text
    for path in ("chronology", "chronology.csv", "chronology.pdf", "professionals", "standards", "proposals"):
        assert doc.post(f"/api/v1/charts/{path}", json={"patient": "qpat"}).status_code == 200
    files = _all_bytes_under(server.data_dir, server.tmp_dir)
    assert any(path.endswith("medvault.db") for path, _ in files)
    for path, data in files:
        for marker in M.values():
            assert marker.encode().lower() not in data.lower(), f"{marker} found in {path}"
    with sqlite3.connect(server.data_dir / "medvault.db") as db:
        columns = [c[1] for c in db.execute("PRAGMA table_info(chart_entries)")]
        assert columns == ["id", "patient_id", "author_id", "created_at", "sealed"]
        keys = [c[1] for c in db.execute("PRAGMA table_info(chart_keys)")]
        assert keys == ["patient_id", "reader_id", "via", "share_id", "wrapped", "granted_at"]
    database = b"".join(data for path, data in files if os.path.basename(path).startswith("medvault.db"))
    for kind in KINDS:
        assert kind.encode() not in database, f"the kind {kind!r} is readable in the database"
    kinds = {e["kind"] for e in pat.post("/api/v1/charts/entries/list", json={}).json()["items"]}
    assert kinds == set(KINDS), "yet every kind is there for the chart's readers"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_drops_the_clear_kind_column(backend, tmp_path, request):
    """A database from before revision 0008, with a kind in clear, loses the column and keeps its entries."""
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE chart_entries ADD COLUMN kind VARCHAR(16)"))
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0007'"))
        conn.execute(
            sa.text(
                "INSERT INTO users (id, username, role, status, created_at, key_generation)"
                " VALUES ('u', 'u', 'patient', 'active', 0, 0)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO chart_entries (id, patient_id, kind, author_id, created_at, sealed)"
                " VALUES ('e', 'u', 'injury', 'u', 1, :sealed)"
            ),
            {"sealed": b"ciphertext"},
        )
    migrate(engine)
    with engine.connect() as conn:
        columns = [c["name"] for c in sa.inspect(conn).get_columns("chart_entries")]
        rows = conn.execute(sa.text("SELECT id, patient_id, author_id, created_at, sealed FROM chart_entries")).all()
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert "kind" not in columns and int(version) >= 8  # the newest revision, 0008 or a later one
    assert [tuple(r) for r in rows] == [("e", "u", "u", 1.0, b"ciphertext")]
