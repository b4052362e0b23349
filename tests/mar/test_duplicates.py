"""Duplicates over the real API: exact ones found at upload by a keyed hash that links nothing across charts,
near ones (same text, a re-scan) suggested; and the bad input that metadata refuses with nothing stored."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3

import pytest

from medvault.mar.duplicates import MAX_TEXTS
from tests.support import upload

DUPS = "/api/v1/records/duplicates"


@pytest.fixture(scope="module")
def people(server):
    return {"a": server.account("dupa"), "b": server.account("dupb"), "c": server.account("dupc"), "server": server}


def _hashes(server) -> dict[str, str | None]:
    with sqlite3.connect(server.data_dir / "medvault.db") as db:
        return dict(db.execute("SELECT id, dup_hash FROM records"))


def test_exact_duplicate_reported_at_upload_and_kept(people):
    """The second upload of the same bytes names the first; both are kept (the user decides)."""
    a = people["a"]["client"]
    first = upload(a, b"%PDF-1.4 same lab report", "lab.pdf", {"title": "Lab"})
    second = upload(a, b"%PDF-1.4 same lab report", "lab-again.pdf", {"title": "Lab (again)"})
    other = upload(a, b"%PDF-1.4 another report", "other.pdf", {"title": "Other"})
    assert first.status_code == second.status_code == other.status_code == 201
    assert first.json()["duplicate_of"] is None and other.json()["duplicate_of"] is None
    assert second.json()["duplicate_of"] == first.json()["id"]
    assert a.get(f"/api/v1/records/{second.json()['id']}").status_code == 200
    groups = a.post(DUPS, json={}).json()["exact"]
    assert [[r["id"] for r in g["records"]] for g in groups] == [[first.json()["id"], second.json()["id"]]]


def test_equal_files_in_two_charts_stay_unlinkable(people):
    """Equal bytes in two charts: no duplicate reported, different keyed hashes, never the plain SHA-256."""
    content = b"%PDF-1.4 identical discharge letter in two charts"
    mine = upload(people["a"]["client"], content, "d.pdf", {"title": "Discharge"}).json()
    theirs = upload(people["b"]["client"], content, "d.pdf", {"title": "Discharge"}).json()
    assert mine["duplicate_of"] is None and theirs["duplicate_of"] is None
    hashes = _hashes(people["server"])
    assert hashes[mine["id"]] and hashes[theirs["id"]] and hashes[mine["id"]] != hashes[theirs["id"]]
    plain = hashlib.sha256(content).hexdigest()
    assert plain not in hashes.values()
    assert people["b"]["client"].post(DUPS, json={}).json()["exact"] == []


def test_near_duplicates_same_text_and_rescan(people):
    """Text that differs only in case and spacing, and a re-scan (same title, facility, date; other bytes),
    are suggested; unrelated records are not."""
    b = people["b"]["client"]
    text = "Discharge summary.\nPatient stable after appendectomy; follow-up in two weeks with Dr. Grey.\n" * 3
    t1 = upload(b, text.encode(), "note.txt", {"title": "Note"}, "text/plain").json()["id"]
    t2 = upload(b, ("  " + text.upper().replace("\n", "\n\n  ")).encode(), "note2.txt", {}, "text/plain").json()["id"]
    upload(b, b"Completely different words about a knee.", "knee.txt", {"title": "Knee"}, "text/plain")
    meta = {"title": "Chest X-ray", "facility": "General", "service_date": "2024-03-02"}
    s1 = upload(b, b"%PDF-1.4 scan one", "xr1.pdf", meta).json()["id"]
    s2 = upload(b, b"%PDF-1.4 scan two, slightly different", "xr2.pdf", {**meta, "title": "chest x-ray"}).json()["id"]
    upload(b, b"%PDF-1.4 other date", "xr3.pdf", {**meta, "service_date": "2024-03-03"})
    near = b.post(DUPS, json={}).json()["near"]
    pairs = {(frozenset(r["id"] for r in n["records"]), n["reason"]) for n in near}
    assert pairs == {(frozenset({t1, t2}), "same text"), (frozenset({s1, s2}), "re-scan")}
    assert next(n for n in near if n["reason"] == "same text")["similarity"] >= 0.9


def test_newest_texts_are_compared_when_there_are_too_many(people):
    """With more text records than are compared, the newest are: a near pair uploaded last is still suggested."""
    c = people["c"]["client"]
    for n in range(MAX_TEXTS):  # random hex: no two of these are alike
        assert upload(c, secrets.token_hex(64).encode(), f"old{n}.txt", {}, "text/plain").status_code == 201
    text = "Clinic letter.\nBlood pressure 128/82, well controlled; review in six months with Dr. Okafor.\n" * 3
    first = upload(c, text.encode(), "letter.txt", {}, "text/plain").json()["id"]
    again = upload(c, text.upper().encode(), "letter2.txt", {}, "text/plain").json()["id"]
    near = c.post(DUPS, json={}).json()["near"]
    assert [[r["id"] for r in n["records"]] for n in near] == [[first, again]]


def test_duplicates_body_refusals(people):
    """The duplicates endpoint answers an unknown field or a body that is not an object with 400, and a caller not
    signed in with 401 or 403."""
    a = people["a"]["client"]
    assert a.post(DUPS, json={"x": 1}).status_code == 400
    assert a.post(DUPS, content=b"[]").status_code == 400
    assert people["server"].client().post(DUPS, json={}).status_code in (401, 403)


@pytest.mark.parametrize(
    ("meta", "named"),
    [
        ({"service_date": "2999-01-01"}, "service_date"),
        ({"document_date": "2999"}, "document_date"),
        ({"service_date": "2023-02-30"}, "service_date"),
        ({"service_date": "24-01-01"}, "service_date"),
        ({"custom": {"note": "x" * 2001}}, "note"),
        ({"custom": {f"f{i}": i for i in range(101)}}, "custom"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_metadata_refused_and_nothing_stored(people, meta, named):
    """Future, impossible or malformed dates, oversized custom fields, unknown keys: 400 naming the key."""
    a = people["a"]["client"]
    before = len(a.get("/api/v1/records", params={"limit": 200}).json()["items"])
    response = upload(a, b"%PDF-1.4 bad input", "bad.pdf", meta)
    assert response.status_code == 400, response.text
    assert named in response.json()["detail"]
    assert len(a.get("/api/v1/records", params={"limit": 200}).json()["items"]) == before


def test_today_is_accepted(people):
    """A service date of today (UTC) is accepted: only a date after today is refused as in the future."""
    import datetime as dt

    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert upload(people["a"]["client"], b"today", "t.pdf", {"service_date": today}).status_code == 201
