"""Summaries back to the patient: written by a specialist with a share, signed by them, in the patient's inbox."""

from __future__ import annotations

import pytest

from tests.support import upload


@pytest.fixture(scope="module")
def pair(server):
    pat, dr = server.account("sumpat"), server.account("sumdoc", role="specialist")
    rid = upload(pat["client"], b"CT scan", "ct.txt").json()["id"]
    share = pat["client"].post("/api/v1/shares", json={"specialist": "sumdoc", "records": [rid]}).json()
    return pat["client"], dr["client"], share


def test_summary_round_trip(pair):
    """The summary reaches the patient's inbox signed by the specialist, with the exact Markdown."""
    pat, dr, _ = pair
    text = "# Findings\n\nNo fracture. <script>alert(1)</script>\n"
    sent = dr.post("/api/v1/summaries", json={"patient": "sumpat", "title": "CT review", "markdown": text})
    assert sent.status_code == 201, sent.text
    inbox = pat.get("/api/v1/inbox").json()["items"]
    assert [(i["title"], i["signed_by"], i["signature_valid"]) for i in inbox] == [("CT review", "sumdoc", True)]
    assert pat.get(f"/api/v1/records/{sent.json()['id']}/content").text == text
    assert dr.get(f"/api/v1/records/{sent.json()['id']}").status_code == 200


def test_summary_needs_a_live_share(server, pair):
    """Without a share from that patient (or after revocation) a specialist cannot send, nor read it back."""
    pat, dr, share = pair
    stranger = server.account("strangedoc", role="specialist")["client"]
    refused = stranger.post("/api/v1/summaries", json={"patient": "sumpat", "markdown": "hello"})
    assert refused.status_code == 400 and "not shared" in refused.json()["detail"]
    assert pat.post("/api/v1/summaries", json={"patient": "sumpat", "markdown": "x"}).status_code == 403
    assert dr.post("/api/v1/summaries", json={"patient": "sumpat", "markdown": "  "}).status_code == 400
    sent = dr.post("/api/v1/summaries", json={"patient": "sumpat", "markdown": "second"}).json()["id"]
    assert pat.delete(f"/api/v1/shares/{share['id']}").status_code == 204
    assert dr.get(f"/api/v1/records/{sent}").status_code == 404
    assert dr.post("/api/v1/summaries", json={"patient": "sumpat", "markdown": "third"}).status_code == 400
    assert pat.get(f"/api/v1/records/{sent}").status_code == 200
