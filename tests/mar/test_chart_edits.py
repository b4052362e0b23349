"""Editing and deleting chart entries over the real API: who may (the author, or the patient), the same checks
as writing, the id kept and the editor signing, links that never dangle, the audit trail, both databases."""

from __future__ import annotations

import sqlite3

import pytest

from tests.support import upload

ENTRIES = "/api/v1/charts/entries"


@pytest.fixture(scope="module")
def chart(server):
    people = {
        "pat": server.account("edpat")["client"],
        "doc": server.account("eddoc", role="specialist")["client"],
        "colleague": server.account("edcolleague", role="specialist")["client"],
        "reader": server.account("edreader", role="specialist")["client"],
        "stranger": server.account("edstranger", role="specialist")["client"],
    }
    pat = people["pat"]
    rids = [
        upload(pat, f"record {i}".encode(), f"r{i}.pdf", {"service_date": "2024-01-10"}).json()["id"] for i in (0, 1)
    ]
    for name, access in (("eddoc", "annotate"), ("edcolleague", "annotate"), ("edreader", "read")):
        assert pat.post("/api/v1/shares", json={"specialist": name, "chart": True, "access": access}).status_code == 201
    return {**people, "rids": rids, "server": server}


def _add(client, kind, data, patient="edpat"):
    response = client.post(ENTRIES, json={"patient": patient, "kind": kind, "data": data})
    assert response.status_code == 201, response.text
    return response.json()


def _listed(client, entry_id: str, patient="edpat") -> dict | None:
    items = client.post(f"{ENTRIES}/list", json={"patient": patient}).json()["items"]
    return next((e for e in items if e["id"] == entry_id), None)


def test_the_author_edits_and_the_editor_signs(chart):
    """A specialist replaces their annotation: same id, kind and creation time, new data, their signature;
    the patient may replace it too and then signs it as its author."""
    doc, pat = chart["doc"], chart["pat"]
    note = _add(doc, "annotation", {"record": chart["rids"][0], "text": "Triage incomplete"})
    edited = doc.put(f"{ENTRIES}/{note['id']}", json={"data": {"record": chart["rids"][0], "text": "Triage late"}})
    assert edited.status_code == 200, edited.text
    edited = edited.json()
    assert (edited["id"], edited["kind"], edited["created_at"]) == (note["id"], "annotation", note["created_at"])
    assert edited["data"]["text"] == "Triage late" and edited["author"] == "eddoc" and "updated_at" in edited
    seen = _listed(pat, note["id"], patient=None)
    assert seen["data"]["text"] == "Triage late" and seen["signature_valid"] is True and seen["author"] == "eddoc"
    by_patient = pat.put(f"{ENTRIES}/{note['id']}", json={"data": {"record": chart["rids"][0], "text": "Mine now"}})
    assert by_patient.status_code == 200, by_patient.text
    seen = _listed(doc, note["id"])
    assert (seen["author"], seen["data"]["text"], seen["signature_valid"]) == ("edpat", "Mine now", True)


def test_only_the_author_or_the_patient_may_change_an_entry(chart):
    """Another annotating specialist gets 403, a read-only share 403, a stranger 404; nothing changes."""
    doc = chart["doc"]
    occ = _add(doc, "occurrence", {"type": "note", "date": "2024-01-10", "description": "Seen at ER"})
    data = {"data": {"type": "note", "date": "2024-01-10", "description": "Rewritten"}}
    for who, status in (("colleague", 403), ("reader", 403), ("stranger", 404)):
        assert chart[who].put(f"{ENTRIES}/{occ['id']}", json=data).status_code == status, who
        assert chart[who].delete(f"{ENTRIES}/{occ['id']}").status_code == status, who
    assert _listed(doc, occ["id"])["data"]["description"] == "Seen at ER"


def test_an_edit_is_checked_as_a_new_entry_is(chart):
    """Bad data, another kind's fields, an unreadable citation, a standard by the patient, a missing CSRF token
    or an unknown entry are refused, and the entry is left as it was."""
    pat, doc = chart["pat"], chart["doc"]
    other = chart["server"].account("edother")["client"]
    stranger_record = upload(other, b"not yours", "x.pdf").json()["id"]
    occ = _add(pat, "occurrence", {"type": "encounter", "date": "2024-02-02"}, patient=None)
    good = {"type": "encounter", "date": "2024-02-02"}
    for body in (
        {"data": {**good, "date": "2999-01-01"}},
        {"data": {**good, "witness": "W"}},
        {"data": {**good, "citations": [{"record": stranger_record}]}},
        {"data": good, "kind": "injury"},
        {"data": "not an object"},
        {},
    ):
        response = pat.put(f"{ENTRIES}/{occ['id']}", json=body)
        assert response.status_code == 400 and response.json()["detail"], (body, response.text)
    standard = _add(doc, "standard", {"occurrence": occ["id"], "standard": {"source": "NICE"}, "status": "met"})
    refused = pat.put(f"{ENTRIES}/{standard['id']}", json={"data": {**standard["data"], "status": "not-met"}})
    assert refused.status_code == 403 and "specialists" in refused.json()["detail"]
    token = pat.headers.pop("X-CSRF-Token")
    assert pat.put(f"{ENTRIES}/{occ['id']}", json={"data": good}).status_code == 403
    assert pat.delete(f"{ENTRIES}/{occ['id']}").status_code == 403
    pat.headers["X-CSRF-Token"] = token
    assert pat.put(f"{ENTRIES}/00000000-0000-0000-0000-000000000000", json={"data": good}).status_code == 404
    assert pat.delete(f"{ENTRIES}/nope").status_code == 404
    unchanged = {"type": "encounter", "date": "2024-02-02", "approximate": False, "providers": [], "citations": []}
    assert _listed(pat, occ["id"], patient=None)["data"] == unchanged


def test_a_linked_entry_cannot_be_deleted_until_its_links_are_gone(chart):
    """Deleting an occurrence that an annotation and an injury link to is a 409 naming them; once they are
    deleted (or edited to drop the link), the occurrence goes, and reading it is a 404."""
    pat, doc = chart["pat"], chart["doc"]
    occ = _add(pat, "occurrence", {"type": "injury", "date": "2024-03-15", "description": "Fall"}, patient=None)
    note = _add(doc, "annotation", {"occurrence": occ["id"], "text": "Ice"})
    injury = _add(doc, "injury", {"date": "2024-03-15", "body_site": "wrist", "occurrences": [occ["id"]]})
    refused = pat.delete(f"{ENTRIES}/{occ['id']}")
    assert refused.status_code == 409
    assert note["id"] in refused.json()["detail"] and injury["id"] in refused.json()["detail"]
    assert _listed(pat, occ["id"], patient=None) is not None
    assert doc.delete(f"{ENTRIES}/{note['id']}").status_code == 204
    unlinked = doc.put(f"{ENTRIES}/{injury['id']}", json={"data": {"date": "2024-03-15", "body_site": "wrist"}})
    assert unlinked.status_code == 200, unlinked.text
    assert pat.delete(f"{ENTRIES}/{occ['id']}").status_code == 204
    assert pat.get(f"{ENTRIES}/{occ['id']}").status_code == 404
    assert _listed(pat, occ["id"], patient=None) is None
    relink = doc.put(f"{ENTRIES}/{injury['id']}", json={"data": {"date": "2024-03-15", "occurrences": [occ["id"]]}})
    assert relink.status_code == 400 and occ["id"] in relink.json()["detail"]


def test_edits_and_deletes_enter_the_patients_audit_trail(chart):
    """An edit is an `annotate` line and a delete a `chart-delete` line for each record the entry cites."""
    pat, doc = chart["pat"], chart["doc"]
    rid = chart["rids"][1]
    note = _add(doc, "annotation", {"record": rid, "text": "first"})
    assert doc.put(f"{ENTRIES}/{note['id']}", json={"data": {"record": rid, "text": "second"}}).status_code == 200
    assert doc.delete(f"{ENTRIES}/{note['id']}").status_code == 204
    trail = [(e["who"], e["action"]) for e in pat.get("/api/v1/audit").json()["items"] if e["record_id"] == rid]
    assert trail.count(("eddoc", "annotate")) == 2 and ("eddoc", "chart-delete") in trail


def test_a_tampered_entry_can_be_deleted_not_edited(chart):
    """An entry failing its integrity check has no trustworthy data to edit (409); the patient deletes it."""
    pat = chart["pat"]
    entry = _add(pat, "occurrence", {"type": "note", "date": "2020", "description": "to be tampered"}, patient=None)
    with sqlite3.connect(chart["server"].data_dir / "medvault.db") as db:
        (sealed,) = db.execute("SELECT sealed FROM chart_entries WHERE id = ?", (entry["id"],)).fetchone()
        db.execute(
            "UPDATE chart_entries SET sealed = ? WHERE id = ?", (sealed[:-1] + bytes([sealed[-1] ^ 1]), entry["id"])
        )
    data = {"data": {"type": "note", "date": "2020"}}
    assert pat.put(f"{ENTRIES}/{entry['id']}", json=data).status_code == 409
    assert pat.delete(f"{ENTRIES}/{entry['id']}").status_code == 204


def test_edit_and_delete_on_each_database(any_db_server):
    """Replacing and deleting, and the link check inside the writing transaction, on SQLite and PostgreSQL."""
    pat = any_db_server.account("eddbpat")["client"]
    occ = _add(pat, "occurrence", {"type": "encounter", "date": "2024-02-02"}, patient=None)
    note = _add(pat, "annotation", {"occurrence": occ["id"], "text": "ok"}, patient=None)
    assert pat.delete(f"{ENTRIES}/{occ['id']}").status_code == 409
    moved = pat.put(f"{ENTRIES}/{note['id']}", json={"data": {"occurrence": occ["id"], "text": "still ok"}})
    assert moved.status_code == 200 and moved.json()["data"]["text"] == "still ok"
    assert pat.delete(f"{ENTRIES}/{note['id']}").status_code == 204
    assert pat.delete(f"{ENTRIES}/{occ['id']}").status_code == 204
    assert pat.post(f"{ENTRIES}/list", json={}).json()["items"] == []
