"""Chart entry pages over real HTTPS: one entry with its citations and links both ways, the injury form, the
chart's annotations, the notes on a record page, and other users' entries never shown."""

from __future__ import annotations

import time

import pytest

from tests.support import add_entry, upload

HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def chart(server):
    pat = server.account("entpat")
    doc = server.account("entdoc", role="specialist")
    other = server.account("entother")
    c = pat["client"]
    letter = upload(c, b"%PDF-1.4 letter", "letter.pdf", {"title": "A&E letter"}).json()["id"]
    scan = upload(c, b"%PDF-1.4 scan", "scan.pdf", {"title": "Wrist X-ray"}).json()["id"]
    assert c.get("/chart", headers=HTML).status_code == 200  # the chart key exists before sharing
    share = c.post("/api/v1/shares", json={"specialist": "entdoc", "chart": True, "access": "annotate"})
    assert share.status_code == 201, share.text
    cited = [{"record": letter, "pages": "3-4", "quote": "fell"}]
    fall = add_entry(
        c,
        "occurrence",
        {"type": "injury", "date": "2024-03-15", "description": "Fell on the stairs", "citations": cited},
    )
    note = add_entry(c, "annotation", {"occurrence": fall, "text": "Dizzy before the fall"})
    on_letter = add_entry(doc["client"], "annotation", {"record": letter, "text": "Letter is consistent"}, "entpat")
    nice = {"record": letter, "standard": {"source": "NICE NG39"}, "status": "not-met"}
    standard = add_entry(doc["client"], "standard", nice, "entpat")
    secret = add_entry(other["client"], "occurrence", {"type": "note", "date": "2024-01-01", "description": "Secret"})
    return {
        "pat": c,
        "doc": doc["client"],
        "other": other["client"],
        "ids": {"letter": letter, "scan": scan, "fall": fall, "note": note},
        "entries": {"on_letter": on_letter, "standard": standard, "secret": secret},
    }


def test_injury_form_links_and_entry_pages(chart):
    """The injury form makes an injury linking the fall and the note and lands on its page; the page cites the
    letter down to the page; the fall's own page names the injury it contributes to."""
    c, ids = chart["pat"], chart["ids"]
    token = c.headers["X-CSRF-Token"]
    form = {
        "csrf_token": token,
        "date": "2024-03-15",
        "body_site": "left wrist",
        "mechanism": "fall",
        "occurrences": [ids["fall"]],
        "notes": [ids["note"]],
        "cite_record": ids["scan"],
        "cite_pages": "2",
    }
    made = c.post("/chart/injuries/add", data=form, headers=HTML)
    assert made.status_code == 303 and made.headers["location"].startswith("/chart/entries/")
    injury = c.get(made.headers["location"], headers=HTML).text
    assert "Injury on 2024-03-15: left wrist, fall" in injury and "Injury recorded." in injury
    assert f'href="/records/{ids["scan"]}?page=2"' in injury
    linked = injury.split('id="linked"')[1]
    assert "Contributing occurrence" in linked and "Contributing note" in linked and "Fell on the stairs" in linked

    fall = c.get(f"/chart/entries/{ids['fall']}", headers=HTML).text
    assert f'href="/records/{ids["letter"]}?page=3"' in fall and "page 3-4" in fall
    assert 'data-check="unchecked">Not checkable</p>' in fall and "In the reader's words: fell" in fall
    assert "Injury it contributes to" in fall and "Annotation on it" in fall
    assert "Injury on 2024-03-15" in c.get("/chart/injuries", headers=HTML).text

    refused = c.post("/chart/injuries/add", data={"csrf_token": token, "date": "2999-01-01"}, headers=HTML)
    assert refused.status_code == 400 and "in the future" in refused.text and 'value="2999-01-01"' in refused.text


def test_record_page_and_chart_list_the_annotations(chart):
    """The letter's page shows the specialist's annotation and standard about it (to the patient and to the
    specialist); the other record's page shows none; the chart's list names what each annotation is about."""
    ids, entries = chart["ids"], chart["entries"]
    for client in (chart["pat"], chart["doc"]):
        letter = client.get(f"/records/{ids['letter']}", headers=HTML).text
        notes = letter.split('id="record-notes"')[1].split("</section>")[0]
        assert "Letter is consistent" in notes and "NICE NG39" in notes and "not-met" in notes
        assert entries["on_letter"] in notes and "Dizzy" not in notes
    assert 'id="no-notes"' in chart["pat"].get(f"/records/{ids['scan']}", headers=HTML).text
    listed = chart["doc"].get("/patients/entpat/chart/annotations", headers=HTML).text
    table = listed.split('id="annotations"')[1]
    assert table.index("Letter is consistent") < table.index("Dizzy before the fall")  # newest first
    assert f'href="/records/{ids["letter"]}">A&amp;E letter' in table
    assert f'href="/patients/entpat/chart/entries/{ids["fall"]}">Injury on 2024-03-15' in table


def test_cited_page_opens_the_pdf_there(chart):
    """A citation link's `?page=` opens the record's PDF preview at that page; anything else is ignored."""
    c, letter = chart["pat"], chart["ids"]["letter"]
    assert f'/records/{letter}/preview#page=3"' in c.get(f"/records/{letter}?page=3", headers=HTML).text
    assert "#page=" not in c.get(f"/records/{letter}?page=3%3Cx", headers=HTML).text


def test_other_users_entries_are_not_found(chart):
    """Another chart's entry, or a malformed id, is a friendly 404 under one's own chart and under a shared one,
    a chart not shared with the specialist is refused, and nothing of the entry is ever shown."""
    secret, fall = chart["entries"]["secret"], chart["ids"]["fall"]
    for client, path in (
        (chart["pat"], f"/chart/entries/{secret}"),
        (chart["doc"], f"/patients/entpat/chart/entries/{secret}"),
        (chart["other"], f"/chart/entries/{fall}"),
        (chart["pat"], "/chart/entries/not-an-id"),
    ):
        answer = client.get(path, headers=HTML)
        assert answer.status_code == 404 and "Not found" in answer.text, path
        assert "Secret" not in answer.text and "Fell on the stairs" not in answer.text
    refused = chart["doc"].get(f"/patients/entother/chart/entries/{secret}", headers=HTML)
    assert refused.status_code == 403 and "Secret" not in refused.text
    assert chart["doc"].get(f"/chart/entries/{fall}", headers=HTML).status_code == 404


def test_logs_name_no_patient_and_keep_route_templates(chart, server):
    """A specialist's requests about a patient (their chart, an injury added to it) are logged with the route's
    template: neither the access log nor the server's output names the patient (the security log names accounts
    only in sign-in events, which the login jails need)."""
    doc, ids = chart["doc"], chart["ids"]
    assert doc.get("/patients/entpat/chart/injuries", headers=HTML).status_code == 200
    form = {"csrf_token": doc.headers["X-CSRF-Token"], "date": "2024-03-16", "body_site": "neck", "mechanism": "fall"}
    assert doc.post("/patients/entpat/chart/injuries/add", data=form, headers=HTML).status_code == 303
    assert doc.get(f"/records/{ids['letter']}", headers=HTML).status_code == 200
    access = server.data_dir / "logs" / "access.log"
    deadline = time.monotonic() + 5
    while "/patients/{username}/chart/injuries/add" not in access.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = access.read_text().splitlines()
    assert any('"POST /patients/{username}/chart/injuries/add HTTP' in line for line in lines)
    assert any('"GET /records/{id} HTTP' in line for line in lines)
    logs = [access, server.data_dir.parent / f"{server.data_dir.name}-server.log"]
    named = [p.name for p in logs if "entpat" in p.read_text(errors="replace")]
    assert not named, named
