"""Reviewing duplicates through the pages over real HTTPS: keep both is remembered (page and API), "newer version
of" links the two records as versions, and every other user's id is simply not found."""

from __future__ import annotations

import sqlite3

import pytest

from tests.support import upload

HTML = {"accept": "text/html"}
DUPS = "/api/v1/records/duplicates"
TEXT = "Discharge summary. Patient stable after appendectomy; follow-up in two weeks with Dr. Grey.\n" * 3


@pytest.fixture(scope="module")
def people(server):
    return {
        "pat": server.account("duppat"),
        "other": server.account("dupother"),
        "doc": server.account("dupdoc", role="specialist"),
    }


def _decide(client, a: str, b: str, decision: str, token: str | None = None):
    token = client.headers["X-CSRF-Token"] if token is None else token
    form = {"csrf_token": token, "a": a, "b": b, "decision": decision}
    return client.post("/records/duplicates/resolve", data=form, headers=HTML)


def _text_pair(client, title: str) -> tuple[str, str]:
    older = upload(client, TEXT.encode(), f"{title}.txt", {"title": title}, "text/plain").json()["id"]
    newer = upload(client, TEXT.upper().encode(), f"{title}-v2.txt", {"title": f"{title} v2"}, "text/plain").json()
    return older, newer["id"]


def test_keep_both_is_remembered(server, people):
    """An exact pair is listed and compared side by side; "keep both" hides it from the page and the API alike,
    and the database keeps no record id of the decision."""
    pat = people["pat"]["client"]
    a = upload(pat, b"%PDF-1.4 same scan", "scan.pdf", {"title": "Scan"}).json()["id"]
    b = upload(pat, b"%PDF-1.4 same scan", "scan-again.pdf", {"title": "Scan again"}).json()["id"]
    listed = pat.get("/records/duplicates", headers=HTML).text
    assert f"compare?a={a}&amp;b={b}" in listed and "Exact copy" in listed
    compared = pat.get(f"/records/duplicates/compare?a={b}&b={a}", headers=HTML)
    assert compared.status_code == 200
    assert f'A: <a href="/records/{a}">Scan</a>' in compared.text  # the older upload is A, whatever the URL says
    assert 'id="a-pdf-preview"' in compared.text and 'id="b-pdf-preview"' in compared.text

    kept = _decide(pat, a, b, "keep")
    assert kept.status_code == 303 and kept.headers["location"] == "/records/duplicates?done=kept"
    assert a not in pat.get("/records/duplicates", headers=HTML).text
    assert pat.post(DUPS, json={}).json()["exact"] == []
    assert _decide(pat, b, a, "keep").status_code == 303  # deciding twice is no error
    with sqlite3.connect(server.data_dir / "medvault.db") as db:
        stored = db.execute("SELECT pair FROM duplicate_reviews").fetchall()
    assert len(stored) == 1 and a not in stored[0][0] and b not in stored[0][0]


def test_newer_version_links_and_shares_onwards(people):
    """Marking B as the newer version of A supersedes A, keeps B's id and signer, gives B to the specialist who
    reads A, and ends the suggestion; marking again is refused with a reason on the page."""
    pat, doc = people["pat"]["client"], people["doc"]["client"]
    older, newer = _text_pair(pat, "Letter")
    assert pat.post("/api/v1/shares", json={"specialist": "dupdoc", "records": [older]}).status_code == 201
    assert doc.get(f"/api/v1/records/{newer}").status_code == 404

    linked = _decide(pat, older, newer, "b-newer")
    assert linked.status_code == 303 and linked.headers["location"] == "/records/duplicates?done=versioned"
    old, new = pat.get(f"/api/v1/records/{older}").json(), pat.get(f"/api/v1/records/{newer}").json()
    assert old["superseded_by"] == newer and new["supersedes"] == older and new["signed_by"] == "duppat"
    assert new["signature_valid"] is True
    assert doc.get(f"/api/v1/records/{newer}").json()["superseded"] is False
    assert not any(older in {r["id"] for r in n["records"]} for n in pat.post(DUPS, json={}).json()["near"])
    assert "open the newer version" in pat.get(f"/records/{older}", headers=HTML).text

    again = _decide(pat, older, newer, "b-newer")
    assert again.status_code == 409 and "already has a newer version" in again.text
    backwards = _decide(pat, older, newer, "a-newer")
    assert backwards.status_code == 409 and 'id="compare-error"' in backwards.text


def test_other_users_ids_are_not_found(people):
    """Another patient's record in a pair is a 404 on every page and action, and nothing of it is shown."""
    pat, other = people["pat"]["client"], people["other"]["client"]
    mine = upload(pat, b"mine", "mine.txt", {"title": "Mine"}, "text/plain").json()["id"]
    theirs = upload(other, b"theirs", "theirs.txt", {"title": "Their secret"}, "text/plain").json()["id"]
    for answer in (
        pat.get(f"/records/duplicates/compare?a={mine}&b={theirs}", headers=HTML),
        _decide(pat, mine, theirs, "keep"),
        _decide(pat, theirs, mine, "b-newer"),
    ):
        assert answer.status_code == 404 and "Their secret" not in answer.text and "Not found" in answer.text
    assert pat.get(f"/records/duplicates/compare?a={mine}&b={mine}", headers=HTML).status_code == 404
    assert pat.get("/records/duplicates/compare?a=nope&b=1", headers=HTML).status_code == 404


def test_decisions_need_csrf_and_a_known_choice(people):
    """Without the session's CSRF token the decision is refused; an unknown decision is a 400."""
    pat = people["pat"]["client"]
    a, b = _text_pair(pat, "Note")
    assert _decide(pat, a, b, "keep", token="forged").status_code == 403
    assert _decide(pat, a, b, "merge").status_code == 400
    assert any({a, b} == {r["id"] for r in n["records"]} for n in pat.post(DUPS, json={}).json()["near"])
