"""Backups of an instance whose blobs are in an S3-compatible bucket (a real moto_server process on loopback):
blobs read from the bucket as stored ciphertext, incremental like the folder backups; the restore drill puts
them into an empty bucket, and a new server on it serves every record intact; a restore killed half-way is
resumed by the next one."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
from contextlib import suppress

import pytest

from medvault.backup.journal import NAME as JOURNAL
from medvault.backup.journal import Journal
from medvault.blobs import is_blob_name
from tests.blobs.conftest import s3  # noqa: F401 - the session's moto_server fixture
from tests.blobs.s3server import eventually
from tests.support import BIN, Server, cli, upload
from tests.test_backup import SUMMARY, _a_blob, _flip, age_key  # noqa: F401 - the module-scoped age identity
from tests.vault.test_at_rest import _all_bytes_under

PATIENT, SPECIALIST = "numbatpatient", "numbatdoctor"
MARKER = b"NUMBAT-BLOOD-PANEL-2207"
SCANS = 32  # records of 1 MiB besides the three named ones, so that a restore lasts long enough to be killed


def _keys(s3) -> dict[str, str]:  # noqa: F811
    return {"MEDVAULT_S3_ACCESS_KEY": s3.access_key, "MEDVAULT_S3_SECRET_KEY": s3.secret_key}


def _backup(server: Server, dest, recipient: str):
    out = cli(server.data_dir, "backup", "--to", str(dest), "--recipient", recipient, "--quiet", env=server.env)
    summary = SUMMARY.search(out.stdout)
    assert summary, out.stdout
    return summary


@pytest.fixture(scope="module")
def live(s3, age_key, tmp_path_factory):  # noqa: F811
    """A server with its blobs under `records/` of a bucket; records (one shared, one of three multipart parts,
    SCANS of 1 MiB) backed up three times while it runs: full, with nothing new, after one more upload."""
    _, recipient = age_key
    bucket = s3.new_bucket()
    server = Server(
        tmp_path_factory.mktemp("s3live") / "data", env={"MEDVAULT_BLOB_URL": s3.url(bucket, "records"), **_keys(s3)}
    )
    server.init()
    server.start()
    patient = server.account(PATIENT)
    doctor = server.account(SPECIALIST, role="specialist")
    contents = {}
    files = {
        "panel.txt": b"Blood panel " + MARKER,
        "ct.bin": os.urandom(17 * 1024 * 1024) + MARKER,  # 8 + 8 + 1 MiB parts in the bucket
        "ecg.bin": os.urandom(200_000),
        **{f"scan-{i}.bin": os.urandom(1024 * 1024) for i in range(SCANS)},
    }
    for name, data in files.items():
        made = upload(patient["client"], data, name, {"title": name}, "application/octet-stream")
        assert made.status_code == 201, made.text
        contents[made.json()["id"]] = data
    shared = next(iter(contents))
    made = patient["client"].post("/api/v1/shares", json={"specialist": SPECIALIST, "records": [shared]})
    assert made.status_code == 201, made.text
    dest = tmp_path_factory.mktemp("s3backups") / "backup"
    runs = [_backup(server, dest, recipient), _backup(server, dest, recipient)]
    later = b"Follow-up " + MARKER
    made = upload(patient["client"], later, "follow-up.txt", {"title": "Follow-up"}, "text/plain")
    assert made.status_code == 201, made.text
    contents[made.json()["id"]] = later
    runs.append(_backup(server, dest, recipient))
    yield {
        "server": server,
        "bucket": bucket,
        "dest": dest,
        "runs": runs,
        "contents": contents,
        "shared": shared,
        "password": patient["password"],
        "doctor_password": doctor["password"],
    }
    server.stop()


def test_backups_copy_each_blob_from_the_bucket_once(live, s3):  # noqa: F811
    """The first backup copies every blob; one with nothing new copies none; one after an upload just that one.
    Each blob in the backup folder is byte for byte the object in the bucket (stored ciphertext)."""
    full, again, later = live["runs"]
    blobs = 3 + SCANS
    assert int(full.group(2)) == int(full.group(3)) == blobs
    assert int(again.group(2)) == blobs and int(again.group(3)) == 0 and int(again.group(4)) == 0
    assert int(later.group(2)) == blobs + 1 and int(later.group(3)) == 1 and int(later.group(4)) < 4096
    objects = s3.objects(live["bucket"])
    assert len(objects) == blobs + 1
    client = s3.client()
    for key in objects:
        name = key.removeprefix("records/")
        stored = client.get_object(Bucket=live["bucket"], Key=key)["Body"].read()
        copy = live["dest"] / "blobs" / name[:2] / name
        assert hashlib.sha256(copy.read_bytes()).digest() == hashlib.sha256(stored).digest(), name
    assert not list(live["server"].data_dir.glob(".backup-*")), "the plaintext database copy is gone"


def test_the_backup_holds_no_plaintext(live):
    for path, data in _all_bytes_under(live["dest"]):
        for marker in (MARKER, PATIENT.encode(), SPECIALIST.encode(), b"panel.txt"):
            assert marker.lower() not in data.lower(), f"{marker!r} found in {path}"


def _restore_args(dest, identity) -> tuple[str, ...]:
    return ("restore", "--from", str(dest), "--identity", str(identity), "--quiet")


def _restore(s3, dest, identity, target, bucket, check=True):  # noqa: F811
    args = _restore_args(dest, identity)
    return cli(target, *args, "--blob-url", s3.url(bucket, "restored"), env=_keys(s3), check=check)


def _blobs(s3, bucket) -> set[str]:  # noqa: F811
    return {k.removeprefix("restored/") for k in s3.objects(bucket) if is_blob_name(k.removeprefix("restored/"))}


def test_restore_drill_into_an_empty_bucket(live, s3, age_key, tmp_path):  # noqa: F811
    """Restored into an empty bucket and a new folder, a new server on them serves every record byte for byte
    with a valid signature for its owner, the shared one to the specialist too, and the audit chain verifies."""
    identity, _ = age_key
    bucket, target = s3.new_bucket(), tmp_path / "restored"
    out = _restore(s3, live["dest"], identity, target, bucket).stdout
    assert f"restored snapshot {live['runs'][2].group(1)} into {target} and s3://{bucket}/restored/" in out
    assert f": {len(live['contents'])} blobs verified\n" in out
    _passes_the_drill(live, s3, bucket, target)


def test_a_restore_killed_half_way_is_resumed(live, s3, age_key, tmp_path):  # noqa: F811
    """`kill -9` of a restore's process group once some blobs are in the bucket leaves them beside its journal;
    the same restore run again keeps those (read back and hashed), puts the rest, removes the journal, and the
    restored instance passes the drill."""
    identity, _ = age_key
    bucket, target = s3.new_bucket(), tmp_path / "restored"
    argv = [str(BIN), *_restore_args(live["dest"], identity), "--data-dir", str(target)]
    with (tmp_path / "killed.log").open("wb") as log:
        proc = subprocess.Popen(
            [*argv, "--blob-url", s3.url(bucket, "restored")],
            env={**os.environ, **_keys(s3)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole (age included)
        )
        try:
            began = eventually(lambda: bool(_blobs(s3, bucket)) or proc.poll() is not None, seconds=60)
        finally:
            with suppress(ProcessLookupError):  # it ended by itself: the assertion below says so
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    left = _blobs(s3, bucket)
    assert began and 0 < len(left) < len(live["contents"]), (
        f"the kill must land mid-way: {len(left)} of {len(live['contents'])} blobs were put "
        f"({(tmp_path / 'killed.log').read_text()[-300:]})"
    )
    assert f"restored/{JOURNAL}" in s3.objects(bucket) and not target.exists()
    out = _restore(s3, live["dest"], identity, target, bucket).stdout
    assert f": {len(live['contents'])} blobs verified (" in out and "already put by an interrupted restore" in out
    assert f"restored/{JOURNAL}" not in s3.objects(bucket), "the journal is removed once the restore completed"
    _passes_the_drill(live, s3, bucket, target)


def _passes_the_drill(live, s3, bucket, target) -> None:  # noqa: F811
    """The bucket holds exactly the live instance's blobs, and a new server on it and the restored folder serves
    every record byte for byte with a valid signature, the shared one to the specialist; the audit verifies."""
    assert sorted(s3.objects(bucket)) == sorted(
        "restored/" + k.removeprefix("records/") for k in s3.objects(live["bucket"])
    )
    assert s3.uploads(bucket) == [] and not (target / "blobs").exists(), "no blob in the data folder"
    env = {"MEDVAULT_BLOB_URL": s3.url(bucket, "restored"), **_keys(s3)}
    restored = Server(target, env=env)
    restored.start()
    try:
        pat = restored.client()
        login = pat.post("/api/v1/login", json={"username": PATIENT, "password": live["password"]})
        assert login.status_code == 200, login.text
        items = pat.get("/api/v1/records", params={"limit": 200}).json()
        assert items["unreadable"] == [] and {i["id"] for i in items["items"]} == set(live["contents"])
        for rid, data in live["contents"].items():
            seen = pat.get(f"/api/v1/records/{rid}").json()
            assert seen["signed_by"] == PATIENT and seen["signature_valid"] is True
            got = pat.get(f"/api/v1/records/{rid}/content").content
            assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        doctor = restored.client()
        login = doctor.post("/api/v1/login", json={"username": SPECIALIST, "password": live["doctor_password"]})
        assert login.status_code == 200, login.text
        assert {i["id"] for i in doctor.get("/api/v1/records").json()["items"]} == {live["shared"]}
        shared = doctor.get(f"/api/v1/records/{live['shared']}").json()
        assert shared["signed_by"] == PATIENT and shared["signature_valid"] is True
        assert doctor.get(f"/api/v1/records/{live['shared']}/content").content == live["contents"][live["shared"]]
    finally:
        restored.stop()
    verdict = cli(target, "audit", "verify", env=env).stdout
    assert "audit trail intact" in verdict and " 0 signed checkpoints" not in verdict


def test_restore_refuses_a_bucket_that_is_not_empty(live, s3, age_key, tmp_path):  # noqa: F811
    """Anything under the prefix (here an object that is not a blob) refuses the restore with exit 2 before it
    reads the backup: the bucket keeps just that object and no folder appears."""
    identity, _ = age_key
    bucket = s3.new_bucket()
    s3.client().put_object(Bucket=bucket, Key="restored/notes.txt", Body=b"keep me")
    result = _restore(s3, live["dest"], identity, tmp_path / "data", bucket, check=False)
    assert result.returncode == 2 and "is not empty" in result.stderr and f"s3://{bucket}/restored/" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(s3.objects(bucket)) == ["restored/notes.txt"]
    assert list(tmp_path.iterdir()) == []


def _changed_blob(live, s3, bucket) -> None:  # noqa: F811
    """A blob of the snapshot, the same size, one byte flipped (what a tampered bucket would hold)."""
    blob = _a_blob(live["dest"])
    data = bytearray(blob.read_bytes())
    data[100] ^= 0x01
    s3.client().put_object(Bucket=bucket, Key=f"restored/{blob.name}", Body=bytes(data))


def _foreign_object(live, s3, bucket) -> None:  # noqa: F811
    s3.client().put_object(Bucket=bucket, Key="restored/notes.txt", Body=b"keep me")


BESIDE_A_JOURNAL = {
    "an object that is not a blob": (_foreign_object, "holds 'notes.txt' beside an unfinished restore"),
    "a blob that does not hash to the manifest": (_changed_blob, "does not match the snapshot's manifest"),
}


@pytest.mark.parametrize("case", [*BESIDE_A_JOURNAL, "the journal of another snapshot"])
def test_a_journal_resumes_only_its_own_snapshot_and_blobs(case, live, s3, age_key, tmp_path):  # noqa: F811
    """Beside a restore's journal, anything that is not a blob of that snapshot's manifest with its bytes (or a
    journal of another snapshot) still refuses the restore with exit 2, and the bucket is left as it was."""
    identity, _ = age_key
    bucket = s3.new_bucket()
    newest = live["runs"][0 if case == "the journal of another snapshot" else 2].group(1)
    digest = hashlib.sha256((live["dest"] / "snapshots" / newest / "manifest.json.age").read_bytes()).hexdigest()
    body = Journal(newest, digest, "0123456789abcdef").to_json()
    s3.client().put_object(Bucket=bucket, Key=f"restored/{JOURNAL}", Body=body)
    add, message = BESIDE_A_JOURNAL.get(case, (lambda *_: None, "holds an unfinished restore of snapshot"))
    add(live, s3, bucket)
    before = {k: o["ETag"] for k, o in s3.objects(bucket).items()}
    result = _restore(s3, live["dest"], identity, tmp_path / "data", bucket, check=False)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert {k: o["ETag"] for k, o in s3.objects(bucket).items()} == before and s3.uploads(bucket) == []
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_blob_leaves_the_bucket_empty(live, s3, age_key, tmp_path):  # noqa: F811
    """A blob changed in the backup is never put into the bucket; the blobs put before it are deleted again."""
    identity, _ = age_key
    copy = tmp_path / "copy"
    shutil.copytree(live["dest"], copy)
    _flip(_a_blob(copy), 100)
    bucket = s3.new_bucket()
    result = _restore(s3, copy, identity, tmp_path / "data", bucket, check=False)
    assert result.returncode == 2 and "does not match its manifest" in result.stderr, result.stderr
    assert s3.objects(bucket) == {} and s3.uploads(bucket) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]


def test_an_unreachable_bucket_is_one_line_and_exit_2(live, age_key, tmp_path):  # noqa: F811
    """A backup whose bucket cannot be reached fails with exit 2 and one line naming the store."""
    from tests.support import free_port

    _, recipient = age_key
    env = {**live["server"].env, "MEDVAULT_BLOB_URL": f"s3://medvault-gone?endpoint=http://127.0.0.1:{free_port()}"}
    args = ("backup", "--to", str(tmp_path / "bk"), "--recipient", recipient)
    result = cli(live["server"].data_dir, *args, env=env, check=False)
    assert result.returncode == 2 and "blob store s3://medvault-gone" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not list((tmp_path / "bk").glob("snapshots/*"))
