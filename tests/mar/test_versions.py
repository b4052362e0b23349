"""Versions over the real API: a new version is a new record with a new key that supersedes the old one, the
chain is kept, only readers with a live share get the new key, lists and search mark superseded records,
metadata edits are new versions, and a chain never forks."""

from __future__ import annotations

import re

import pytest

from tests.support import upload


@pytest.fixture(scope="module")
def setup(server):
    pat, doc, gone = (
        server.account("verpat"),
        server.account("verdoc", "specialist"),
        server.account("vergone", "specialist"),
    )
    p = pat["client"]
    v1 = upload(
        p, b"%PDF-1.4 report, first reading", "report.pdf", {"title": "MRI report", "service_date": "2024-02-01"}
    )
    v1 = v1.json()["id"]
    for name in ("verdoc", "vergone"):
        assert p.post("/api/v1/shares", json={"specialist": name, "records": [v1]}).status_code == 201
    gone_share = next(s["id"] for s in p.get("/api/v1/shares").json()["items"] if s["with"] == "vergone")
    assert p.delete(f"/api/v1/shares/{gone_share}").status_code == 204
    files = {"file": ("report-v2.pdf", b"%PDF-1.4 report, corrected reading", "application/pdf")}
    v2 = p.post(f"/api/v1/records/{v1}/versions", files=files)
    assert v2.status_code == 201, v2.text
    return {"p": p, "doc": doc["client"], "gone": gone["client"], "v1": v1, "v2": v2.json(), "server": server}


def _marked(page: str) -> dict[str, bool]:
    """Record id → whether its row in a page's records table says it is an earlier version."""
    rows = [row.split("</tr>")[0] for row in page.split("<tr>")[1:]]
    found = ((re.search(r'href="/records/([0-9a-f-]{36})"', row), row) for row in rows)
    return {link.group(1): "earlier version" in row for link, row in found if link}


def test_new_version_supersedes_and_keeps_the_chain(setup):
    """A new version and the one it supersedes point at each other, the new one keeps the old metadata when none is
    sent, and each keeps its own content."""
    p, v1, v2 = setup["p"], setup["v1"], setup["v2"]
    assert v2["supersedes"] == v1 and v2["versions"] == [v1, v2["id"]]
    old, new = p.get(f"/api/v1/records/{v1}").json(), p.get(f"/api/v1/records/{v2['id']}").json()
    assert old["superseded"] is True and old["superseded_by"] == v2["id"] and old["supersedes"] is None
    assert new["supersedes"] == v1 and new["superseded"] is False and new["superseded_by"] is None
    assert new["title"] == "MRI report" and new["service_date"] == "2024-02-01", "no metadata part keeps the old"
    assert new["filename"] == "report-v2.pdf" and new["signature_valid"] is True
    assert p.get(f"/api/v1/records/{v1}/content").content == b"%PDF-1.4 report, first reading"
    assert p.get(f"/api/v1/records/{v2['id']}/content").content == b"%PDF-1.4 report, corrected reading"


def test_only_live_readers_get_the_new_version(setup):
    """The specialist with a live share reads the new version; the revoked one reads neither."""
    doc, gone, v2 = setup["doc"], setup["gone"], setup["v2"]["id"]
    assert doc.get(f"/api/v1/records/{v2}/content").content == b"%PDF-1.4 report, corrected reading"
    assert doc.get(f"/api/v1/records/{setup['v1']}").json()["superseded_by"] == v2
    assert gone.get(f"/api/v1/records/{v2}").status_code == 404
    assert gone.get(f"/api/v1/records/{setup['v1']}").status_code == 404


def test_lists_and_search_mark_superseded(setup):
    """The records list and search APIs mark the earlier version superseded and the current one not."""
    p, v1, v2 = setup["p"], setup["v1"], setup["v2"]["id"]
    listed = {r["id"]: r["superseded"] for r in p.get("/api/v1/records").json()["items"]}
    assert listed[v1] is True and listed[v2] is False
    found = p.post("/api/v1/records/search", json={"q": "MRI"}).json()["items"]
    assert {r["id"]: r["superseded"] for r in found} == {v1: True, v2: False}


def test_records_and_search_pages_mark_superseded(setup):
    """The records page and the search page mark the earlier version as such, and the current one not."""
    p, v1, v2 = setup["p"], setup["v1"], setup["v2"]["id"]
    html = {"accept": "text/html"}
    listed = p.get("/records", headers=html).text
    found = p.post("/records/search", data={"csrf_token": p.headers["X-CSRF-Token"], "q": "MRI"}, headers=html).text
    for page in (listed, found):
        marked = _marked(page)
        assert (marked[v1], marked[v2]) == (True, False)


def test_a_chain_never_forks_and_only_the_owner_adds(setup):
    """Only the current version takes a new version or an edit (an earlier one is 409), only from its owner (a reader
    gets 404), and an unknown id is 404."""
    p, doc, v1, v2 = setup["p"], setup["doc"], setup["v1"], setup["v2"]["id"]
    files = {"file": ("x.pdf", b"%PDF-1.4 fork", "application/pdf")}
    assert p.post(f"/api/v1/records/{v1}/versions", files=files).status_code == 409
    assert p.patch(f"/api/v1/records/{v1}", json={"title": "fork"}).status_code == 409
    assert doc.post(f"/api/v1/records/{v2}/versions", files=files).status_code == 404
    assert doc.patch(f"/api/v1/records/{v2}", json={"title": "x"}).status_code == 404
    assert p.post("/api/v1/records/00000000-0000-0000-0000-000000000000/versions", files=files).status_code == 404


def test_metadata_edit_is_a_new_version_with_the_same_content(setup):
    """A metadata edit is validated before anything is written, then makes a new version with the same content and the
    edited fields (null removes one), never reported as a duplicate of the old."""
    p = setup["p"]
    base = upload(p, b"%PDF-1.4 letter", "letter.pdf", {"title": "Letter", "tags": ["a"], "facility": "General"})
    base = base.json()["id"]
    bad = p.patch(f"/api/v1/records/{base}", json={"service_date": "2999-01-01"})
    assert bad.status_code == 400 and "service_date" in bad.json()["detail"]
    assert p.get(f"/api/v1/records/{base}").json()["superseded"] is False, "nothing half-written"
    edited = p.patch(f"/api/v1/records/{base}", json={"title": "Letter (GP)", "facility": None, "tags": ["a", "b"]})
    assert edited.status_code == 201, edited.text
    new = edited.json()
    assert new["supersedes"] == base and new["versions"] == [base, new["id"]]
    assert new["duplicate_of"] is None, "an older version is not a duplicate"
    got = p.get(f"/api/v1/records/{new['id']}").json()
    assert got["title"] == "Letter (GP)" and "facility" not in got and got["tags"] == ["a", "b"]
    assert got["filename"] == "letter.pdf" and got["signature_valid"] is True
    assert p.get(f"/api/v1/records/{new['id']}/content").content == b"%PDF-1.4 letter"
    assert p.post("/api/v1/records/duplicates", json={}).json()["exact"] == []
    third = p.patch(f"/api/v1/records/{new['id']}", json={"title": "Letter (GP, final)"}).json()
    assert third["versions"] == [base, new["id"], third["id"]]
    assert p.patch(f"/api/v1/records/{third['id']}", content=b"[1]").status_code == 400
