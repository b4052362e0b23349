"""The patient's dashboard over real HTTPS: where each role lands, the counts, recent access by others and
unread summaries measured by the audit trail."""

from __future__ import annotations

import re

import pytest

from tests.support import upload

HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def people(server):
    return {"pat": server.account("dashpat"), "doc": server.account("dashdoc", role="specialist")}


def _count(page: str, name: str) -> int:
    return int(re.search(rf'id="count-{name}">(\d+)<', page).group(1))


def test_each_role_lands_on_its_start_page(server, people):
    """The login form sends a patient to the dashboard and a specialist to their patients; a specialist asking for
    the dashboard is sent on to their patients too."""
    for name, landing in (("dashpat", "/dashboard"), ("dashdoc", "/patients")):
        with server.client() as c:
            answer = c.post("/login", data={"username": name, "password": "correct horse battery"})
            assert answer.status_code == 303 and answer.headers["location"] == landing
    moved = people["doc"]["client"].get("/dashboard", headers=HTML)
    assert moved.status_code == 303 and moved.headers["location"] == "/patients"


def test_counts_recent_access_and_unread(people):
    """Records, live shares and unread summaries are counted; the specialist's view of a record is listed, the
    patient's own views are not; a summary stops counting as unread once the patient has opened it."""
    pat, doc = people["pat"]["client"], people["doc"]["client"]
    letters = [
        upload(pat, f"letter {n}".encode(), f"l{n}.txt", {"title": f"Letter {n}"}, "text/plain") for n in range(3)
    ]
    ids = [made.json()["id"] for made in letters]
    shared = pat.post("/api/v1/shares", json={"specialist": "dashdoc", "records": ids[:1], "expires_in_days": 10})
    assert shared.status_code == 201, shared.text
    pat.get(f"/api/v1/records/{ids[1]}")  # the patient's own view: not "access by others"
    assert doc.get(f"/api/v1/records/{ids[0]}").status_code == 200
    sent = doc.post("/api/v1/summaries", json={"patient": "dashpat", "title": "Follow-up", "markdown": "Rest."})
    assert sent.status_code == 201, sent.text

    page = pat.get("/dashboard", headers=HTML).text
    # three letters, the summary and its PDF; the PDF is not a second unread summary
    assert (_count(page, "records"), _count(page, "shares"), _count(page, "unread")) == (5, 1, 1)
    access = page.split('id="recent-access"')[1].split("</ul>")[0]
    assert "dashdoc" in access and "Letter 0" in access and "Letter 1" not in access
    shares = page.split('id="active-shares"')[1].split("</ul>")[0]
    assert "dashdoc" in shares and "ends" in shares
    assert "Follow-up" in page.split('id="recent-records"')[1]

    assert pat.get(f"/records/{sent.json()['id']}", headers=HTML).status_code == 200
    assert _count(pat.get("/dashboard", headers=HTML).text, "unread") == 0


def test_dashboard_needs_a_session(server):
    """Signed out, the dashboard is a friendly 401 page."""
    with server.client() as c:
        answer = c.get("/dashboard", headers=HTML)
        assert answer.status_code == 401 and "Please sign in" in answer.text


def test_share_counts_only_the_records_chosen(server):
    """A share of one record counts one on the dashboard, /shares and both sides' API, though its specialist
    wrote a summary back through it; a summary the patient forwards to another specialist does count."""
    pat, doc = server.account("countpat")["client"], server.account("countdoc", role="specialist")["client"]
    server.account("countdoc2", role="specialist")
    letter = upload(pat, b"letter", "letter.txt", {"title": "Letter"}, "text/plain").json()["id"]
    assert pat.post("/api/v1/shares", json={"specialist": "countdoc", "records": [letter]}).status_code == 201
    sent = doc.post("/api/v1/summaries", json={"patient": "countpat", "title": "Reply", "markdown": "Rest."})
    assert sent.status_code == 201, sent.text
    forwarded = pat.post("/api/v1/shares", json={"specialist": "countdoc2", "records": [sent.json()["id"]]})
    assert forwarded.status_code == 201, forwarded.text

    counts = {s["with"]: s["records"] for s in pat.get("/api/v1/shares").json()["items"]}
    assert counts == {"countdoc": 1, "countdoc2": 1}
    assert [s["records"] for s in doc.get("/api/v1/shares").json()["items"]] == [1]
    rows = pat.get("/shares", headers=HTML).text.split("<tr data-share")[1:]
    assert {re.search(r"<td>(\w+)", row).group(1): re.findall(r"<td>(\d+)</td>", row) for row in rows} == {
        "countdoc": ["1"],
        "countdoc2": ["1"],
    }
    active = pat.get("/dashboard", headers=HTML).text.split('id="active-shares"')[1].split("</ul>")[0]
    assert active.count("1 chosen record ·") == 2 and "chosen records" not in active
