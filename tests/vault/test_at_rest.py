"""What a stolen disk, a database dump or a curious administrator can read: nothing of the records."""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import pytest

from tests.support import Server, begin_raw_upload, upload

MARKERS = [
    b"ZEBRA-CONTENT-7731",
    b"ZEBRA-NAME-4409",
    b"ZEBRA-TITLE-9912",
    b"ZEBRA-FACILITY-0044",
    b"ZEBRA-CUSTOM-5150",
    b"ZEBRA-TAG-3141",
]


def _all_bytes_under(*roots) -> list[tuple[str, bytes]]:
    found = []
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for name in files:
                path = os.path.join(dirpath, name)
                with open(path, "rb") as fh:
                    found.append((path, fh.read()))
    return found


def test_no_marker_anywhere_at_rest(server):
    """Content, file name and metadata markers appear in no byte of the data folder, database or temp folder."""
    user = server.account("zed")
    content = (b"%PDF-1.4 " + MARKERS[0] + b" ") * 5000
    meta = {
        "title": MARKERS[2].decode(),
        "facility": MARKERS[3].decode(),
        "custom": {"k": MARKERS[4].decode()},
        "tags": [MARKERS[5].decode()],
        "description": "about " + MARKERS[2].decode(),
    }
    response = upload(user["client"], content, MARKERS[1].decode() + ".pdf", meta)
    assert response.status_code == 201
    rid = response.json()["id"]
    assert user["client"].get(f"/api/v1/records/{rid}/content").content == content
    user["client"].post("/api/v1/login", json={"username": "zed", "password": user["password"]})
    files = _all_bytes_under(server.data_dir, server.tmp_dir)
    assert any(path.endswith("medvault.db") for path, _ in files)
    for path, data in files:
        for marker in MARKERS:
            assert marker not in data, f"{marker!r} found in {path}"
            assert marker.lower() not in data.lower(), f"{marker!r} (any case) found in {path}"


def _blob_path(server: Server, rid: str):
    import sqlite3

    with sqlite3.connect(server.data_dir / "medvault.db") as db:
        (blob,) = db.execute("SELECT blob FROM records WHERE id = ?", (rid,)).fetchone()
    return server.data_dir / "blobs" / blob[:2] / blob


def _flip(path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x01]))


def test_tampered_first_chunk_gives_a_clear_error(server):
    """A flipped byte in the first chunk is caught before the response starts: a JSON error, no bytes."""
    user = server.account("tam")
    rid = upload(user["client"], os.urandom(100_000)).json()["id"]
    _flip(_blob_path(server, rid), 100)
    response = user["client"].get(f"/api/v1/records/{rid}/content")
    assert response.status_code == 500
    assert response.json() == {"detail": "Stored record failed its integrity check"}


def test_tampered_later_chunk_aborts_the_stream(server):
    """A flipped byte in the third chunk aborts the download after the verified chunks; no bad byte is sent."""
    user = server.account("tam2")
    data = os.urandom(1_000_000)
    rid = upload(user["client"], data).json()["id"]
    chunk = 256 * 1024
    _flip(_blob_path(server, rid), 15 + 2 * (chunk + 16) + 50)
    received = bytearray()
    with pytest.raises(httpx.HTTPError), user["client"].stream("GET", f"/api/v1/records/{rid}/content") as r:
        assert r.status_code == 200
        for piece in r.iter_raw():
            received += piece
    assert len(received) <= 2 * chunk and data.startswith(bytes(received))


def test_kill_9_mid_upload_leaves_nothing_visible(tmp_path):
    """A server killed with SIGKILL during an upload shows no partial record and sweeps the leftovers at start."""
    # No other node shares this store, so the start-up sweep need not wait for leftovers to age.
    srv = Server(tmp_path / "data", env={"MEDVAULT_SWEEP_GRACE_MINUTES": "0"})
    srv.init()
    srv.start()
    try:
        user = srv.account("kit")
        tls = begin_raw_upload(srv, user)
        for _ in range(40):
            tls.sendall(os.urandom(256 * 1024))
        deadline = time.monotonic() + 10
        while not list((srv.data_dir / "blobs" / "tmp").iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list((srv.data_dir / "blobs" / "tmp").iterdir()), "upload never reached the blob store"
        srv.stop(signal.SIGKILL)
        tls.close()
        srv.start()
        with srv.client() as c:
            c.post("/api/v1/login", json={"username": "kit", "password": user["password"]})
            assert c.get("/api/v1/records").json()["items"] == []
        assert list((srv.data_dir / "blobs" / "tmp").iterdir()) == []
    finally:
        srv.stop()


def test_database_dump_holds_no_plaintext_metadata(server):
    """Every record column a dump would show is ciphertext or routing data (ids, sizes, times)."""
    import sqlite3

    user = server.account("dump")
    rid = upload(user["client"], b"x" * 10, "secret-name.txt", {"title": "secret-title"}).json()["id"]
    with sqlite3.connect(server.data_dir / "medvault.db") as db:
        row = db.execute("SELECT * FROM records WHERE id = ?", (rid,)).fetchone()
    dumped = json.dumps([v.hex() if isinstance(v, bytes) else v for v in row])
    assert "secret" not in dumped


def test_records_page_leaves_out_a_tampered_record(server):
    """A record whose sealed metadata was altered in the database is left out of /records and named as unreadable
    by the API list; the others still list."""
    import sqlite3

    user = server.account("tam3")
    good = upload(user["client"], b"fine", "good.txt", {"title": "Intact letter"}).json()["id"]
    bad = upload(user["client"], b"bent", "bad.txt", {"title": "Altered letter"}).json()["id"]
    with sqlite3.connect(server.data_dir / "medvault.db") as db:
        (sealed,) = db.execute("SELECT sealed_metadata FROM records WHERE id = ?", (bad,)).fetchone()
        db.execute("UPDATE records SET sealed_metadata = ? WHERE id = ?", (sealed[:-1] + bytes([sealed[-1] ^ 1]), bad))
    page = user["client"].get("/records", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert good in page.text and "Intact letter" in page.text
    assert bad not in page.text
    listed = user["client"].get("/api/v1/records").json()  # the API names it instead of failing the list
    assert [item["id"] for item in listed["items"]] == [good]
    assert [item["id"] for item in listed["unreadable"]] == [bad] and listed["unreadable"][0]["detail"]
