"""Search over the real API: filters, partial dates, full text, custom fields, sorting, groups, cursors that
survive new records, sharing and confidentiality, deletion, bad input, and nothing of it in plaintext at rest."""

from __future__ import annotations

import pytest

from tests.support import upload
from tests.vault.test_at_rest import _all_bytes_under


def _search(client, **body):
    response = client.post("/api/v1/records/search", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _titles(client, **body) -> list[str]:
    return [item["title"] for item in _search(client, **body)["items"]]


RECORDS = [
    ("Cardiology letter", "2024-05-10", "St. Mary", ["Dr Heart"], "Letter", "cardio", {"ward": "B", "visit": 2}),
    ("Knee MRI", "2024-05", "General", ["Dr Bone"], "Imaging", "radiology", {"ward": "A", "visit": 1}),
    ("Blood panel", "2024", "St. Mary", ["Dr Heart", "Dr Lab"], "Lab", "lab", {"ward": "a", "visit": 3}),
    ("Old x-ray", "2019-02-03", "General", ["Dr Bone"], "Imaging", "radiology", {"visit": 10}),
    ("Undated note", None, "Home", [], "Note", "notes", {}),
]


@pytest.fixture(scope="module")
def pat(server):
    account = server.account("searchpat")
    client = account["client"]
    for title, date, facility, providers, kind, category, custom in RECORDS:
        meta = {"title": title, "facility": facility, "provider": providers, "type": kind, "category": category}
        if date:
            meta["service_date"] = date
        if custom:
            meta["custom"] = custom
        meta["tags"] = ["urgent"] if "MRI" in title else ["routine", "urgent"] if "Blood" in title else ["routine"]
        response = upload(client, f"{title} body".encode(), f"{title}.pdf", meta)
        assert response.status_code == 201, response.text
    text = "# Findings\n\nMild **tachycardia** after exercise; Zürich clinic follow-up.\n"
    note = upload(client, text.encode(), "findings.md", {"title": "Stress test"}, content_type="text/markdown")
    assert note.status_code == 201
    return client


def test_filters_by_field_date_text_custom_tags(pat):
    """Each filter narrows as documented; partial dates match by overlap; text matches word prefixes."""
    assert sorted(_titles(pat, facility="st. MARY")) == ["Blood panel", "Cardiology letter"]
    assert sorted(_titles(pat, provider="dr lab")) == ["Blood panel"]
    assert sorted(_titles(pat, type=["Imaging", "Note"])) == ["Knee MRI", "Old x-ray", "Undated note"]
    assert sorted(_titles(pat, category="radiology", facility="General")) == ["Knee MRI", "Old x-ray"]
    # 2024-05 (all of May) and 2024 (all of the year) overlap 2024-05-20..2024-06; 2024-05-10 does not.
    assert sorted(_titles(pat, **{"from": "2024-05-20", "to": "2024-06"})) == ["Blood panel", "Knee MRI"]
    assert sorted(_titles(pat, **{"from": "2019", "to": "2019"})) == ["Old x-ray"]
    assert "Undated note" not in _titles(pat, **{"from": "2000"})
    assert _titles(pat, q="TACHY zurich") == ["Stress test"], "words of a text file, accents folded"
    assert _titles(pat, q="cardiol") == ["Cardiology letter"]
    assert _titles(pat, q="cardiology tachycardia") == []
    assert sorted(_titles(pat, custom={"ward": "a"})) == ["Blood panel", "Knee MRI"]
    assert _titles(pat, custom={"visit": 10.0}) == ["Old x-ray"]
    assert sorted(_titles(pat, tags=["urgent", "ROUTINE"])) == ["Blood panel"]
    assert len(_titles(pat, confidentiality=["normal"])) == 6
    assert _titles(pat, confidentiality=["very-restricted"]) == []


def test_sorting_and_groups(pat):
    """Sorting by any key both ways (no value: last), and counts per value next to the page."""
    dated = ["Old x-ray", "Blood panel", "Knee MRI", "Cardiology letter"]
    assert _titles(pat, sort="service_date", type=["Imaging", "Lab", "Letter"]) == dated
    assert _titles(pat, sort="-service_date", type=["Imaging", "Lab", "Letter", "Note"]) == [
        *reversed(dated),
        "Undated note",
    ]
    assert _titles(pat, sort="title", limit=2) == ["Blood panel", "Cardiology letter"]
    assert _titles(pat, sort="custom.visit")[:4] == ["Knee MRI", "Cardiology letter", "Blood panel", "Old x-ray"]
    assert _titles(pat, sort="-uploaded")[0] == "Stress test"
    result = _search(pat, group="facility", limit=1)
    assert result["total"] == 6 and len(result["items"]) == 1 and result["next"]
    assert result["groups"] == {"General": 2, "St. Mary": 2, "Home": 1}
    assert _search(pat, group="provider", facility="St. Mary")["groups"] == {"Dr Heart": 2, "Dr Lab": 1}
    assert _search(pat, group="custom.ward")["groups"] == {"A": 2, "B": 1}
    assert "groups" not in _search(pat)


def test_cursor_pages_stay_correct_while_records_are_added(server):
    """Every record shows exactly once across pages even when new ones arrive between pages."""
    client = server.account("pager")["client"]
    for n in range(7):
        upload(client, b"x", "p.txt", {"title": f"doc {n:02d}", "service_date": "2023-01-01"})
    seen: list[str] = []
    page = _search(client, sort="title", limit=3)
    seen += [i["title"] for i in page["items"]]
    upload(client, b"x", "p.txt", {"title": "doc 00a", "service_date": "2023-01-01"})  # sorts before the cursor
    upload(client, b"x", "p.txt", {"title": "doc 99", "service_date": "2023-01-01"})  # sorts after it
    while page["next"]:
        page = _search(client, sort="title", limit=3, cursor=page["next"])
        seen += [i["title"] for i in page["items"]]
    assert seen == [f"doc {n:02d}" for n in range(7)] + ["doc 99"]
    first = _search(client, sort="-service_date", limit=2)
    same_date = [i["title"] for i in first["items"]]
    while first["next"]:
        first = _search(client, sort="-service_date", limit=2, cursor=first["next"])
        same_date += [i["title"] for i in first["items"]]
    assert len(same_date) == len(set(same_date)) == 9, "ties broken by record id: no repeats, no gaps"
    other = client.post("/api/v1/records/search", json={"sort": "uploaded", "cursor": page["next"] or "x"})
    assert other.status_code == 400
    cursor = _search(client, sort="title", limit=1)["next"]
    moved = client.post("/api/v1/records/search", json={"sort": "-title", "limit": 1, "cursor": cursor})
    assert moved.status_code == 400 and "different search" in moved.json()["detail"]
    stranger = server.account("pager2")["client"]
    assert stranger.post("/api/v1/records/search", json={"sort": "title", "cursor": cursor}).status_code == 400


def test_shared_revoked_deleted_and_very_restricted(any_db_server):
    """A specialist finds shared records (indexed at their next search), never revoked or deleted ones, and
    a very-restricted record only when it was shared by record, not through a chart share (both databases)."""
    pat = any_db_server.account("vrpat")["client"]
    dr = any_db_server.account("vrdoc", role="specialist")["client"]
    normal = upload(pat, b"n", "n.txt", {"title": "Normal scan", "service_date": "2024-01"}).json()["id"]
    secret = upload(
        pat, b"s", "s.txt", {"title": "Secret scan", "service_date": "2024-02", "confidentiality": "very-restricted"}
    ).json()["id"]
    gone = upload(pat, b"g", "g.txt", {"title": "Gone scan", "service_date": "2024-03"}).json()["id"]
    assert _search(dr)["total"] == 0
    chart = pat.post("/api/v1/shares", json={"specialist": "vrdoc", "chart": True, "from": "2024"}).json()
    assert dr.get(f"/api/v1/records/{normal}").status_code == 200
    assert sorted(_titles(dr, q="scan")) == ["Gone scan", "Normal scan"], "very-restricted: not via a chart share"
    assert sorted(_titles(pat, q="scan")) == ["Gone scan", "Normal scan", "Secret scan"], "the owner finds it"
    assert pat.delete(f"/api/v1/records/{gone}").status_code == 204
    assert _titles(dr, q="scan") == ["Normal scan"] and "Gone scan" not in _titles(pat, q="scan")
    assert pat.delete(f"/api/v1/shares/{chart['id']}").status_code == 204
    assert _search(dr)["total"] == 0
    explicit = pat.post("/api/v1/shares", json={"specialist": "vrdoc", "records": [secret]})
    assert explicit.status_code == 201
    found = _search(dr, confidentiality=["very-restricted"])["items"]
    assert [(i["id"], i["signed_by"], i["signature_valid"]) for i in found] == [(secret, "vrpat", True)]


def test_bad_searches_get_clear_answers(server, pat):
    """Unknown keys, bad dates, sorts, limits and cursors: 400 with a detail; no CSRF token: 403."""
    cases = [
        {"colour": "red"},
        {"from": "2024-13"},
        {"sort": "size"},
        {"group": "title"},
        {"limit": 201},
        {"limit": "10"},
        {"cursor": "not-a-cursor"},
        {"custom": {"x": [1]}},
        {"tags": "urgent"},
        {"confidentiality": ["secret"]},
        {"facility": 3},
    ]
    for body in cases:
        response = pat.post("/api/v1/records/search", json=body)
        assert response.status_code == 400 and response.json()["detail"], (body, response.text)
    token = pat.headers.pop("X-CSRF-Token")
    try:
        assert pat.post("/api/v1/records/search", json={}).status_code == 403
    finally:
        pat.headers["X-CSRF-Token"] = token
    with server.client() as anonymous:
        assert anonymous.post("/api/v1/records/search", json={}).status_code == 401


MARKERS = [b"QUAGGA-TEXT-5521", b"QUAGGA-TITLE-8830", b"QUAGGA-TAG-1207", b"QUAGGA-CUSTOM-6644"]


def test_index_and_searches_leave_no_plaintext_at_rest(server):
    """After indexing and searching (own and shared records), no marker is in the data folder, DB or temp."""
    pat = server.account("quagga")["client"]
    dr = server.account("quaggadoc", role="specialist")["client"]
    text = b"notes " + MARKERS[0] + b" end"
    meta = {"title": MARKERS[1].decode(), "tags": [MARKERS[2].decode()], "custom": {"k": MARKERS[3].decode()}}
    rid = upload(pat, text, "notes.txt", meta, content_type="text/plain").json()["id"]
    pat.post("/api/v1/shares", json={"specialist": "quaggadoc", "records": [rid]})
    for client in (pat, dr):
        for body in ({"q": MARKERS[0].decode().lower()}, {"tags": [MARKERS[2].decode()]}, {"sort": "title"}):
            assert [i["id"] for i in _search(client, **body)["items"]] == [rid], body
        assert _search(client, custom={"k": MARKERS[3].decode()}, group="custom.k")["total"] == 1
    files = _all_bytes_under(server.data_dir, server.tmp_dir)
    for path, data in files:
        for marker in MARKERS:
            assert marker.lower() not in data.lower(), f"{marker!r} found in {path}"
