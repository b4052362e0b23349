"""Sharing with specialists over the real API: by record, by chart (future records too), slices, expiry,
revocation, key fingerprints, and the patient's "who saw my records" trail."""

from __future__ import annotations

import time

import pytest

from tests.support import upload


@pytest.fixture(scope="module")
def people(server):
    return {
        "pat": server.account("pat"),
        "drsmith": server.account("drsmith", role="specialist"),
        "nurse": server.account("nurse", role="specialist"),
        "other": server.account("otherpatient"),
    }


def _ids(client) -> set[str]:
    return {item["id"] for item in client.get("/api/v1/records", params={"limit": 200}).json()["items"]}


def test_share_chosen_records_then_revoke(people):
    """A shared record opens for that specialist only, verified and intact; revoking removes access."""
    pat, dr, nurse = people["pat"]["client"], people["drsmith"]["client"], people["nurse"]["client"]
    shared = upload(pat, b"MRI report", "mri.pdf", {"title": "MRI"}).json()["id"]
    private = upload(pat, b"diary", "diary.txt", {"title": "Diary"}).json()["id"]
    specialists = pat.get("/api/v1/specialists").json()["items"]
    fingerprint = next(s["fingerprint"] for s in specialists if s["username"] == "drsmith")
    share = pat.post("/api/v1/shares", json={"specialist": "drsmith", "records": [shared]})
    assert share.status_code == 201, share.text
    assert share.json()["fingerprint"] == fingerprint == dr.get("/api/v1/me").json()["fingerprint"]
    assert shared in _ids(dr) and private not in _ids(dr) and shared not in _ids(nurse)
    seen = dr.get(f"/api/v1/records/{shared}").json()
    assert seen["signed_by"] == "pat" and seen["signature_valid"] is True
    assert dr.get(f"/api/v1/records/{shared}/content").content == b"MRI report"
    assert nurse.get(f"/api/v1/records/{shared}").status_code == 404
    assert dr.delete(f"/api/v1/records/{shared}").status_code == 404, "a reader cannot delete the owner's record"
    assert [s["with"] for s in dr.get("/api/v1/shares").json()["items"]] == ["pat"]
    assert pat.delete(f"/api/v1/shares/{share.json()['id']}").status_code == 204
    assert dr.get(f"/api/v1/records/{shared}").status_code == 404
    assert shared not in _ids(dr)


def test_chart_share_covers_future_records_in_its_slice(people):
    """A chart slice (2024, St. Mary) covers matching records now and later, and no others."""
    pat, nurse = people["pat"]["client"], people["nurse"]["client"]
    before = upload(pat, b"a", "a.txt", {"service_date": "2024-03-02", "facility": "St. Mary"}).json()["id"]
    outside = upload(pat, b"b", "b.txt", {"service_date": "2023-12", "facility": "St. Mary"}).json()["id"]
    elsewhere = upload(pat, b"c", "c.txt", {"service_date": "2024-05", "facility": "General"}).json()["id"]
    share = pat.post(
        "/api/v1/shares",
        json={
            "specialist": "nurse",
            "chart": True,
            "from": "2024",
            "to": "2024-12",
            "facility": "st. mary",
            "access": "annotate",
        },
    )
    assert share.status_code == 201 and share.json()["records"] == 1
    later = upload(pat, b"d", "d.txt", {"service_date": "2024-11", "facility": "St. Mary"}).json()["id"]
    undated = upload(pat, b"e", "e.txt", {"facility": "St. Mary"}).json()["id"]
    seen = _ids(nurse)
    assert {before, later} <= seen and not {outside, elsewhere, undated} & seen
    assert nurse.get(f"/api/v1/records/{later}/content").content == b"d"


def test_chart_share_facility_is_the_name_in_any_spelling_and_nothing_wider(people):
    """"Only St. Mary's Hospital" covers the records spelling that name otherwise (Saint, Hosp., no
    apostrophe, case), now and later, but not another site of the same name nor another kind of place."""
    pat, nurse = people["pat"]["client"], people["nurse"]["client"]
    spelled = {"St. Mary's Hospital": b"a", "SAINT MARYS HOSP.": b"b"}
    other = {"St. Mary's Hospital, Shelbyville": b"c", "St. Mary's Medical Center": b"d", "St. Mary": b"e"}
    ids = {n: upload(pat, body, "r.txt", {"facility": n}).json()["id"] for n, body in (spelled | other).items()}
    share = pat.post("/api/v1/shares", json={"specialist": "nurse", "chart": True, "facility": "Saint Mary's Hospital"})
    assert share.status_code == 201 and share.json()["records"] == 2, share.text
    later = upload(pat, b"f", "f.txt", {"facility": "st marys hospital"}).json()["id"]
    seen = _ids(nurse)
    assert {ids[n] for n in spelled} | {later} <= seen
    assert not {ids[n] for n in other} & seen


def test_expired_share_stops_at_once(people):
    """A share past its expiry no longer opens anything."""
    pat, dr = people["pat"]["client"], people["drsmith"]["client"]
    rid = upload(pat, b"short-lived", "x.txt").json()["id"]
    share = pat.post("/api/v1/shares", json={"specialist": "drsmith", "records": [rid], "expires_in_days": 2 / 86400})
    assert share.status_code == 201
    assert dr.get(f"/api/v1/records/{rid}").status_code == 200
    time.sleep(2.5)
    assert dr.get(f"/api/v1/records/{rid}").status_code == 404


def test_sharing_refuses_what_it_must(people):
    """Sharing another's record, with a patient, with nobody, or both ways at once gets a clear 4xx."""
    pat, other = people["pat"]["client"], people["other"]["client"]
    theirs = upload(other, b"not yours", "t.txt").json()["id"]
    mine = upload(pat, b"mine", "m.txt").json()["id"]
    cases = [
        ({"specialist": "drsmith", "records": [theirs]}, 404),
        ({"specialist": "otherpatient", "records": [mine]}, 400),
        ({"specialist": "ghost", "records": [mine]}, 400),
        ({"specialist": "drsmith", "records": [mine], "chart": True}, 400),
        ({"specialist": "drsmith", "chart": True, "from": "2024-13"}, 400),
        ({"specialist": "drsmith", "records": [mine], "access": "own"}, 400),
    ]
    for body, status in cases:
        response = pat.post("/api/v1/shares", json=body)
        assert response.status_code == status and response.json()["detail"], (body, response.text)
    assert (
        people["drsmith"]["client"].post("/api/v1/shares", json={"specialist": "nurse", "records": [mine]}).status_code
        == 403
    )


def test_who_saw_my_records(people):
    """The patient's trail names the specialist who viewed and downloaded, and the share and revoke."""
    pat, dr = people["pat"]["client"], people["drsmith"]["client"]
    rid = upload(pat, b"trail", "trail.txt").json()["id"]
    share = pat.post("/api/v1/shares", json={"specialist": "drsmith", "records": [rid]}).json()
    dr.get(f"/api/v1/records/{rid}")
    dr.get(f"/api/v1/records/{rid}/content")
    pat.delete(f"/api/v1/shares/{share['id']}")
    trail = [(e["who"], e["action"]) for e in pat.get("/api/v1/audit").json()["items"] if e["record_id"] == rid]
    assert trail[:4] == [("pat", "revoke"), ("drsmith", "download"), ("drsmith", "view"), ("pat", "share")]
    assert dr.get("/api/v1/audit").status_code == 403


def test_chart_share_never_includes_very_restricted_records(people):
    """A very restricted record stays out of a chart share, now and later; an explicit share by record works."""
    pat, nurse = people["pat"]["client"], people["nurse"]["client"]
    secret = upload(pat, b"psych note", "p.txt", {"confidentiality": "very-restricted", "facility": "Clinic Z"})
    secret = secret.json()["id"]
    share = pat.post("/api/v1/shares", json={"specialist": "nurse", "chart": True, "facility": "Clinic Z"})
    assert share.status_code == 201 and share.json()["records"] == 0
    later = upload(pat, b"later", "l.txt", {"confidentiality": "very-restricted", "facility": "Clinic Z"}).json()["id"]
    assert not {secret, later} & _ids(nurse)
    assert pat.post("/api/v1/shares", json={"specialist": "nurse", "records": [secret]}).status_code == 201
    assert secret in _ids(nurse)
