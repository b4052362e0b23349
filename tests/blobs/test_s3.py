"""Blobs in an S3-compatible bucket (a real moto_server process): streamed multipart, ciphertext only, swept."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import pytest

from tests.blobs.s3server import SMALL_PART, eventually
from tests.support import Server, begin_raw_upload, cli, free_port, upload

MARKER = b"Jane Roe, born 1970-02-03, diagnosis: hypothetical-marker-7731. "


@pytest.fixture(scope="module")
def s3_server(s3, tmp_path_factory):
    """A `medvault serve` whose blobs go to a fresh bucket under `records/`, keys from MEDVAULT_S3_*."""
    bucket = s3.new_bucket()
    env = {
        "MEDVAULT_BLOB_URL": s3.url(bucket, "records"),
        "MEDVAULT_S3_ACCESS_KEY": s3.access_key,
        "MEDVAULT_S3_SECRET_KEY": s3.secret_key,
    }
    srv = Server(tmp_path_factory.mktemp("s3srv") / "data", env=env)
    srv.init()
    srv.start()
    srv.bucket = bucket
    yield srv
    srv.stop()


def test_multipart_upload_through_the_server_stores_only_ciphertext(s3, s3_server):
    """A 20 MiB record uploaded to `medvault serve` goes into the bucket in three parts, as ciphertext only,
    and downloads byte for byte, whole and as a range from the middle; the data folder holds no blob."""
    user = s3_server.account("s3patient")
    content = (MARKER * (20 * 1024 * 1024 // len(MARKER) + 1))[: 20 * 1024 * 1024 + 12345]
    made = upload(user["client"], content, "chart.txt", content_type="text/plain")
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    whole = user["client"].get(f"/api/v1/records/{rid}/content")
    assert whole.status_code == 200 and hashlib.sha256(whole.content).digest() == hashlib.sha256(content).digest()
    ranged = user["client"].get(f"/api/v1/records/{rid}/content", headers={"Range": "bytes=9000000-9300099"})
    assert ranged.status_code == 206 and ranged.content == content[9_000_000:9_300_100]
    objects = s3.objects(s3_server.bucket)
    assert len(objects) == 1 and all(key.startswith("records/") for key in objects)
    ((key, entry),) = objects.items()
    assert entry["ETag"].strip('"').endswith("-3"), "sent as a multipart upload of 8 + 8 + 4 MiB"
    stored = s3.client().get_object(Bucket=s3_server.bucket, Key=key)["Body"].read()
    assert len(stored) > len(content) and MARKER[:20] not in stored and b"hypothetical-marker" not in stored
    assert s3.uploads(s3_server.bucket) == []
    assert [p for p in (s3_server.data_dir / "blobs").rglob("*") if p.is_file()] == []
    assert user["client"].delete(f"/api/v1/records/{rid}").status_code in (200, 204)
    assert s3.objects(s3_server.bucket) == {}


def _rss_mib(pid: int, field: str) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith(field + ":")).split()[1]) / 1024


def test_large_record_streams_through_the_bucket_in_bounded_memory(s3, s3_server):
    """A 256 MiB record goes up in 8 MiB parts and comes back intact while the server's resident memory grows
    by less than 64 MiB: neither direction holds the file (the bucket's own process holds it, not ours)."""
    user = s3_server.account("s3big")
    pid = s3_server.proc.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # why: resets the peak, which logins' Argon2 (64 MiB) set
    before = _rss_mib(pid, "VmRSS")
    size, piece, boundary = 256 * 1024**2, os.urandom(1024 * 1024), "mvs3boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="ct.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    sent, got = hashlib.sha256(), hashlib.sha256()

    def body():
        yield head
        for _ in range(size // len(piece)):
            sent.update(piece)
            yield piece
        yield tail

    made = user["client"].post(
        "/api/v1/records",
        content=body(),
        headers={
            "content-type": f"multipart/form-data; boundary={boundary}",
            "content-length": str(len(head) + size + len(tail)),
        },
    )
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    with user["client"].stream("GET", f"/api/v1/records/{rid}/content") as answer:
        for chunk in answer.iter_bytes(1024 * 1024):
            got.update(chunk)
    assert got.digest() == sent.digest()
    assert _rss_mib(pid, "VmHWM") - before < 64
    assert user["client"].delete(f"/api/v1/records/{rid}").status_code in (200, 204)
    assert s3.objects(s3_server.bucket) == {} and s3.uploads(s3_server.bucket) == []


def test_kill_9_mid_upload_leaves_nothing_after_restart(s3, tmp_path):
    """A server killed with SIGKILL after sending parts leaves an incomplete multipart upload, which its next
    start aborts (grace 0: no other node shares this bucket); no record and no object appear."""
    bucket = s3.new_bucket()
    env = {
        "MEDVAULT_BLOB_URL": s3.url(bucket),
        "MEDVAULT_S3_ACCESS_KEY": s3.access_key,
        "MEDVAULT_S3_SECRET_KEY": s3.secret_key,
        "MEDVAULT_SWEEP_GRACE_MINUTES": "0",
    }
    srv = Server(tmp_path / "data", env=env)
    srv.init()
    srv.start()
    try:
        user = srv.account("s3kill")
        with begin_raw_upload(srv, user) as tls:
            for _ in range(48):
                tls.sendall(os.urandom(256 * 1024))
            assert eventually(lambda: s3.uploads(bucket) != []), "no part reached the bucket"
            srv.stop(signal.SIGKILL)
        srv.start()
        assert s3.uploads(bucket) == [] and s3.objects(bucket) == {}
        with srv.client() as again:
            again.post("/api/v1/login", json={"username": "s3kill", "password": user["password"]})
            assert again.get("/api/v1/records").json()["items"] == []
    finally:
        srv.stop()


def test_writer_aborted_mid_upload_leaves_nothing(s3):
    """A writer that sent a part and is then aborted leaves neither an object nor a multipart upload."""
    bucket = s3.new_bucket()
    store = s3.store(bucket)
    writer = store.create()
    writer.write(os.urandom(SMALL_PART + 1000))
    assert eventually(lambda: s3.uploads(bucket) == [f"blobs/{writer.name}"]), "the first part goes while writing"
    writer.abort()
    assert s3.uploads(bucket) == [] and s3.objects(bucket) == {}
    writer.abort()  # the vault's clean-up path may abort twice


def test_small_blob_reads_back_with_seeks_and_is_deleted(s3):
    """A blob under one part is one PutObject, visible only at commit; it reads back after seeks, and is gone
    after `delete`; a missing blob fails `open` with FileNotFoundError."""
    bucket = s3.new_bucket()
    store = s3.store(bucket)
    data = os.urandom(300_000)
    writer = store.create()
    writer.write(data[:1000])
    writer.write(data[1000:])
    assert s3.objects(bucket) == {} and s3.uploads(bucket) == []
    name = writer.commit()
    assert list(store.names()) == [name]
    with store.open(name) as handle:
        assert handle.read(10) == data[:10]
        handle.seek(200_000)
        assert handle.read(50_000) == data[200_000:250_000]
        handle.seek(5)
        assert handle.read() == data[5:]
    store.delete(name)
    with pytest.raises(FileNotFoundError):
        store.open(name)


def test_bad_blob_url_is_refused_with_exit_code_2(tmp_path):
    """A malformed blob_url stops `medvault serve` at once with exit code 2 and the key named."""
    for url, says in [
        ("ftp://medvault-blobs", "expected s3://BUCKET"),
        ("s3://medvault-blobs?endpoint=http://192.0.2.7:9000", "plain http is allowed on loopback only"),
        ("s3://AK:SECRET@medvault-blobs", "credentials do not belong in the URL"),
    ]:
        result = cli(tmp_path / "data", "serve", env={"MEDVAULT_BLOB_URL": url}, check=False)
        assert result.returncode == 2 and "'blob_url'" in result.stderr and says in result.stderr, result.stderr
        assert "SECRET" not in result.stderr


def test_half_a_key_pair_is_refused_with_exit_code_2(tmp_path):
    """An access key without its secret (or the reverse) is a settings error naming both keys."""
    result = cli(tmp_path / "data", "serve", env={"MEDVAULT_S3_ACCESS_KEY": "AKIDONLY"}, check=False)
    assert result.returncode == 2 and "'s3_access_key' and 's3_secret_key'" in result.stderr, result.stderr


def test_unusable_store_stops_the_server_with_exit_code_2(s3, tmp_path):
    """A bucket that does not exist, or an endpoint nobody answers, stops `serve` at start with exit code 2;
    the keys here come from the standard AWS environment variables."""
    data = tmp_path / "data"
    cli(data, "init")
    keys = {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
    for url, says in [
        (s3.url("medvault-no-such-bucket"), "NoSuchBucket"),
        (f"s3://medvault-blobs?endpoint=http://127.0.0.1:{free_port()}", "Could not connect"),
    ]:
        env = {"MEDVAULT_BLOB_URL": url, **keys}
        result = cli(data, "serve", "--https-port", str(free_port()), env=env, check=False)
        assert result.returncode == 2 and "blob store s3://" in result.stderr and says in result.stderr, result.stderr
        assert s3.secret_key not in result.stderr
