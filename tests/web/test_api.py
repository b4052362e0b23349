"""The JSON API contract against a real server over real TLS, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.support import upload

PDF = b"%PDF-1.4\n" + os.urandom(300_000) + b"\n%%EOF\n"


@pytest.fixture(scope="module")
def server(any_db_server):
    return any_db_server


@pytest.fixture(scope="module")
def alice(server):
    return server.account("alice")


@pytest.fixture(scope="module")
def bob(server):
    return server.account("bob")


def test_login_contract(server, alice):
    """Wrong password and unknown user get the same 401 detail; success gives a cookie and a CSRF token."""
    with server.client() as c:
        wrong = c.post("/api/v1/login", json={"username": "alice", "password": "not the password"})
        unknown = c.post("/api/v1/login", json={"username": "nobody-here", "password": "not the password"})
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json() == {"detail": "Invalid username or password"}
        ok = c.post("/api/v1/login", json={"username": "alice", "password": alice["password"]})
        assert ok.status_code == 200 and ok.json()["csrf_token"]
        cookie = ok.headers["set-cookie"]
        for attribute in ("Secure", "HttpOnly", "SameSite=strict"):
            assert attribute.lower() in cookie.lower()


def test_upload_list_view_download_delete(alice):
    """A record goes up, shows in the list with its metadata and a valid signature, comes down, and is deleted."""
    c = alice["client"]
    meta = {
        "title": "Knee MRI",
        "facility": "St. Mary",
        "provider": ["Dr. Who"],
        "service_date": "2024-03",
        "tags": ["knee"],
        "custom": {"side": "left"},
        "type": "18748-4",
    }
    created = upload(c, PDF, "knee.pdf", meta)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    assert str(uuid.UUID(rid)) == rid
    listed = c.get("/api/v1/records").json()
    assert rid in [item["id"] for item in listed["items"]] and "next" in listed
    one = c.get(f"/api/v1/records/{rid}").json()
    assert one["title"] == "Knee MRI" and one["provider"] == ["Dr. Who"] and one["custom"] == {"side": "left"}
    assert one["signed_by"] == "alice" and one["signature_valid"] is True
    assert c.get(f"/api/v1/records/{rid}/content").content == PDF
    assert c.delete(f"/api/v1/records/{rid}").status_code == 204
    assert c.get(f"/api/v1/records/{rid}").status_code == 404


def test_range_requests(alice):
    """Single byte ranges are answered 206 with the right bytes; unsatisfiable ones 416."""
    c = alice["client"]
    rid = upload(c, PDF).json()["id"]
    part = c.get(f"/api/v1/records/{rid}/content", headers={"Range": "bytes=262140-262150"})
    assert part.status_code == 206 and part.content == PDF[262140:262151]
    assert part.headers["content-range"] == f"bytes 262140-262150/{len(PDF)}"
    tail = c.get(f"/api/v1/records/{rid}/content", headers={"Range": "bytes=-7"})
    assert tail.content == PDF[-7:]
    assert c.get(f"/api/v1/records/{rid}/content", headers={"Range": f"bytes={len(PDF)}-"}).status_code == 416


def test_pagination_cursor_is_opaque(alice):
    """Pages of the list join up without gaps or repeats; the cursor reveals nothing and cannot be forged."""
    c = alice["client"]
    ids = {upload(c, b"page test %d" % i, f"p{i}.txt", content_type="text/plain").json()["id"] for i in range(5)}
    seen: list[str] = []
    cursor = None
    for _ in range(50):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = c.get("/api/v1/records", params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert ids <= set(seen) and len(seen) == len(set(seen))
    assert c.get("/api/v1/records", params={"cursor": "AAAA"}).status_code == 400


def test_other_users_records_are_not_found(alice, bob):
    """Bob gets 404, not 403, for Alice's record: no existence leak; he cannot delete it either."""
    rid = upload(alice["client"], PDF).json()["id"]
    for method, path in [("GET", ""), ("GET", "/content"), ("DELETE", "")]:
        response = bob["client"].request(method, f"/api/v1/records/{rid}{path}")
        assert response.status_code == 404 and response.json()["detail"] == "Record not found"
    assert alice["client"].get(f"/api/v1/records/{rid}").status_code == 200


def test_csrf_token_required_for_state_changes(server, alice):
    """A session request without the X-CSRF-Token header cannot upload or delete."""
    c = alice["client"]
    rid = upload(c, PDF).json()["id"]
    token = c.headers.pop("X-CSRF-Token")
    try:
        assert c.delete(f"/api/v1/records/{rid}").status_code == 403
        assert upload(c, b"x").status_code == 403
        assert c.delete(f"/api/v1/records/{rid}", headers={"X-CSRF-Token": "forged"}).status_code == 403
    finally:
        c.headers["X-CSRF-Token"] = token


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"not multipart", {"content-type": "text/plain"}, 400),
        (
            b'--xx\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
            {"content-type": "multipart/form-data; boundary=xx"},
            400,
        ),
        (b"--xx--\r\n", {"content-type": "multipart/form-data; boundary=xx"}, 400),
    ],
)
def test_malformed_uploads_write_nothing(server, alice, body, headers, status):
    """Malformed or truncated multipart bodies get a 4xx with a detail, and no record appears."""
    c = alice["client"]
    before = len(c.get("/api/v1/records", params={"limit": 200}).json()["items"])
    response = c.post("/api/v1/records", content=body, headers=headers)
    assert response.status_code == status and response.json()["detail"]
    assert len(c.get("/api/v1/records", params={"limit": 200}).json()["items"]) == before
    assert list((server.data_dir / "blobs" / "tmp").iterdir()) == []


@pytest.mark.parametrize(
    ("meta", "fragment"),
    [
        ('{"service_date": "2024-13"}', "service_date"),
        ('{"colour": "red"}', "unknown metadata key"),
        ("[1, 2]", "JSON object"),
        ("{not json", "not valid JSON"),
        ('{"confidentiality": "public"}', "confidentiality"),
    ],
)
def test_bad_metadata_is_refused(alice, meta, fragment):
    """Each metadata mistake is named in the 400 detail."""
    response = alice["client"].post(
        "/api/v1/records", files={"file": ("a.txt", b"abc", "text/plain")}, data={"metadata": meta}
    )
    assert response.status_code == 400 and fragment in response.json()["detail"]


def test_empty_file_and_path_tricks(alice):
    """Empty files are refused; a file name with path tricks is reduced to its last component."""
    c = alice["client"]
    assert upload(c, b"", "empty.txt").status_code == 400
    for name, kept in [("../../etc/passwd", "passwd"), ("C:\\Users\\x\\report.pdf", "report.pdf"), ("..", "upload")]:
        rid = upload(c, b"hello", name).json()["id"]
        assert c.get(f"/api/v1/records/{rid}").json()["filename"] == kept


def test_bad_json_and_unknown_ids(server, alice):
    """Malformed JSON, missing fields and non-UUID ids get clear 4xx answers."""
    with server.client() as c:
        assert (
            c.post("/api/v1/login", content=b"{oops", headers={"content-type": "application/json"}).status_code == 400
        )
        assert c.post("/api/v1/login", json={"username": "x"}).json()["detail"].startswith("Missing")
    assert alice["client"].get("/api/v1/records/not-a-uuid").status_code == 404
    assert alice["client"].get(f"/api/v1/records/{uuid.uuid4()}").status_code == 404


def test_not_signed_in(server):
    """Without a session the API answers 401 with a detail, never a page or a trace."""
    with server.client() as c:
        response = c.get("/api/v1/records")
        assert response.status_code == 401 and response.json() == {"detail": "Not signed in"}


def test_admin_cannot_hold_records(server):
    """Administrators manage accounts, never records."""
    admin = server.account("root2", role="admin")
    assert upload(admin["client"], b"abc").status_code == 403


def test_security_headers_everywhere(server):
    """HSTS (>= 1 year), CSP with frame-ancestors 'none', nosniff, referrer policy, no version banner."""
    with server.client() as c:
        for path in ("/login", "/api/v1/records", "/nope", "/static/app.css"):
            h = c.get(path).headers
            assert int(h["strict-transport-security"].split("max-age=")[1].split(";")[0]) >= 31536000
            assert "frame-ancestors 'none'" in h["content-security-policy"]
            assert "unsafe-inline" not in h["content-security-policy"]
            assert h["x-content-type-options"] == "nosniff"
            assert h["referrer-policy"] == "no-referrer"
            assert "server" not in h


def test_plain_http_only_redirects(server):
    """Every method and path on the HTTP port gets a 308 to the same path on HTTPS, and nothing else."""
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}") as c:
        for method, path in [("GET", "/login"), ("POST", "/api/v1/login"), ("GET", "/api/v1/records?x=1")]:
            response = c.request(method, path, json={"username": "alice", "password": "x"})
            assert response.status_code == 308
            assert response.headers["location"] == f"https://127.0.0.1:8443{path}" or response.headers[
                "location"
            ].endswith(path)
            assert response.content == b"" and "set-cookie" not in response.headers
