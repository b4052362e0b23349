"""Limits that keep the server standing: the bounded Argon2 pool, the upload size limit, constant memory."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import pytest

from tests.support import Server, upload


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    """A server with one Argon2 worker, no queue, and a 100 kB upload limit."""
    env = {"MEDVAULT_LOGIN_WORKERS": "1", "MEDVAULT_LOGIN_QUEUE": "0", "MEDVAULT_MAX_UPLOAD_BYTES": "100000"}
    srv = Server(tmp_path_factory.mktemp("tight") / "data", env=env)
    srv.init()
    srv.start()
    yield srv
    srv.stop()


def test_login_pool_answers_503_beyond_capacity(tight):
    """Concurrent logins beyond the pool get 503 with Retry-After at once instead of queueing."""
    tight.account("pooluser")
    results: list[tuple[int, str | None]] = []

    def attempt(i: int) -> None:
        with tight.client(f"127.0.2.{i + 1}") as c:
            r = c.post("/api/v1/login", json={"username": f"nobody{i}", "password": "some password"})
            results.append((r.status_code, r.headers.get("retry-after")))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    statuses = sorted(s for s, _ in results)
    assert 503 in statuses and 401 in statuses, statuses
    assert all(ra == "2" for s, ra in results if s == 503)


def test_upload_over_the_limit_is_refused_and_leaves_nothing(tight):
    """A file over the configured limit gets 413 and leaves no record and no temp file."""
    user = tight.account("biguser")
    response = upload(user["client"], os.urandom(150_000))
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    assert user["client"].get("/api/v1/records").json()["items"] == []
    assert list((tight.data_dir / "blobs" / "tmp").iterdir()) == []
    assert upload(user["client"], os.urandom(90_000)).status_code == 201


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_two_gib_up_and_down_in_constant_memory(server):
    """A 2 GiB file streams up and back down intact while the server's resident memory stays under 200 MiB."""
    user = server.account("huge")
    size = 2 * 1024**3
    piece = os.urandom(1024 * 1024)
    boundary = "mvboundary7"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'
        f"{json.dumps({'title': 'whole-body CT'})}\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="ct.bin"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    sent = hashlib.sha256()

    def body():
        yield head
        for _ in range(size // len(piece)):
            sent.update(piece)
            yield piece
        yield tail

    response = user["client"].post(
        "/api/v1/records",
        content=body(),
        headers={
            "content-type": f"multipart/form-data; boundary={boundary}",
            "content-length": str(len(head) + size + len(tail)),
        },
    )
    assert response.status_code == 201, response.text
    rid = response.json()["id"]
    got = hashlib.sha256()
    total = 0
    with user["client"].stream("GET", f"/api/v1/records/{rid}/content") as r:
        for chunk in r.iter_bytes(1024 * 1024):
            got.update(chunk)
            total += len(chunk)
    assert total == size and got.hexdigest() == sent.hexdigest()
    peak = _peak_rss_mib(server.proc.pid)
    assert peak < 200, f"server peak RSS {peak:.0f} MiB"
