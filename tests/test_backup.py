"""Backups as an operator uses them: `medvault backup` of a running server, then a restore drill into an empty
folder that a new server serves, with every record intact; refusals of damaged or tampered backups."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.mar.pdfs import make_pdf
from tests.support import Server, cli, png_bytes, require_tool, upload
from tests.vault.test_at_rest import _all_bytes_under

PATIENT, SPECIALIST = "quollpatient", "quolldoctor"
FILENAME = "QUOLL-FILENAME-6620.pdf"
MARKERS = [b"QUOLL-PDF-TEXT-4471", b"QUOLL-NOTE-5521", b"QUOLL-BINARY-9083", b"QUOLL-LATER-3310"]
SUMMARY = re.compile(r"snapshot (\S+): (\d+) blobs \((\d+) new, (\d+) bytes copied\)")


@pytest.fixture(scope="module")
def age_key(tmp_path_factory) -> tuple[Path, str]:
    """An age identity file (kept 'offline' in its own folder) and its public recipient."""
    require_tool("age")
    keygen = require_tool("age-keygen")
    identity = tmp_path_factory.mktemp("offline") / "backup-key.txt"
    subprocess.run([keygen, "-o", str(identity)], check=True, capture_output=True)
    recipient = re.search(r"age1[0-9a-z]+", identity.read_text()).group(0)
    return identity, recipient


def _backup(server: Server, dest: Path, recipient: str) -> re.Match:
    out = cli(server.data_dir, "backup", "--to", str(dest), "--recipient", recipient, "--quiet", env=server.env)
    summary = SUMMARY.search(out.stdout)
    assert summary, out.stdout
    return summary


@pytest.fixture(scope="module")
def drill(server, age_key, tmp_path_factory) -> dict:
    """A patient's records (one shared with a specialist), backed up twice while the server runs."""
    _, recipient = age_key
    patient = server.account(PATIENT)
    doctor = server.account(SPECIALIST, role="specialist")
    pat = patient["client"]
    pdf = make_pdf(["Discharge letter.", f"Radiology: {MARKERS[0].decode()}, cast applied."])
    assert MARKERS[0] in pdf, "the PDF's words stand in its bytes, so a plaintext copy would show"
    files = {
        FILENAME: (pdf, "application/pdf"),
        "note.txt": (b"Clinic note " + MARKERS[1] + b"\n" * 3, "text/plain"),
        "scan.png": (png_bytes(), "image/png"),
        "ecg.bin": (os.urandom(300_000) + MARKERS[2] + os.urandom(300_000), "application/octet-stream"),
    }
    contents = {}
    for name, (data, kind) in files.items():
        made = upload(pat, data, name, {"title": f"Record {name}"}, content_type=kind)
        assert made.status_code == 201, made.text
        contents[made.json()["id"]] = data
    shared = next(iter(contents))
    assert pat.post("/api/v1/shares", json={"specialist": SPECIALIST, "records": [shared]}).status_code == 201
    assert doctor["client"].get(f"/api/v1/records/{shared}/content").content == contents[shared]
    dest = tmp_path_factory.mktemp("backups") / "medvault-backup"
    first = _backup(server, dest, recipient)
    later = b"Follow-up letter " + MARKERS[3]
    made = upload(pat, later, "follow-up.txt", {"title": "Follow-up"}, content_type="text/plain")
    assert made.status_code == 201, made.text
    contents[made.json()["id"]] = later
    second = _backup(server, dest, recipient)
    return {"dest": dest, "first": first, "second": second, "contents": contents, "shared": shared, **patient}


def test_second_backup_copies_only_the_new_blob(drill, server):
    """The first backup copies every blob; the second, after one more upload, copies just that one."""
    first, second = drill["first"], drill["second"]
    assert int(first.group(2)) == int(first.group(3)) >= 4
    assert int(second.group(2)) == int(first.group(2)) + 1
    assert int(second.group(3)) == 1
    blob = int(second.group(4))
    assert len(b"Follow-up letter " + MARKERS[3]) < blob < 4096, "only the small new blob was copied"
    snapshots = sorted(p.name for p in (drill["dest"] / "snapshots").iterdir())
    assert snapshots == sorted([first.group(1), second.group(1)])
    assert not list(server.data_dir.glob(".backup-*")), "the plaintext database copy is gone"


def test_backup_folder_holds_no_plaintext(drill):
    """No file content, user name or file name appears in any byte of the backup folder, in any case."""
    markers = [*MARKERS, PATIENT.encode(), SPECIALIST.encode(), FILENAME.encode(), b"Discharge letter"]
    found = _all_bytes_under(drill["dest"])
    assert any(path.endswith(".age") for path, _ in found) and any("/blobs/" in path for path, _ in found)
    for path, data in found:
        for marker in markers:
            assert marker.lower() not in data.lower(), f"{marker!r} found in {path}"


def test_restore_drill_serves_every_record_intact(drill, age_key, tmp_path):
    """Restored into an empty folder and served, the patient signs in and every record, the shared one
    included, downloads byte for byte with a valid signature; the audit trail verifies."""
    identity, _ = age_key
    target = tmp_path / "restored"
    out = cli(target, "restore", "--from", str(drill["dest"]), "--identity", str(identity)).stdout
    assert f"restored snapshot {drill['second'].group(1)}" in out
    restored = Server(target)
    restored.start()
    try:
        pat = restored.client()
        login = pat.post("/api/v1/login", json={"username": PATIENT, "password": drill["password"]})
        assert login.status_code == 200, login.text
        items = pat.get("/api/v1/records", params={"limit": 200}).json()
        assert items["unreadable"] == []
        assert {item["id"] for item in items["items"]} == set(drill["contents"])
        for rid, data in drill["contents"].items():
            seen = pat.get(f"/api/v1/records/{rid}").json()
            assert seen["signed_by"] == PATIENT and seen["signature_valid"] is True
            assert pat.get(f"/api/v1/records/{rid}/content").content == data
        doctor = restored.client()
        login = doctor.post("/api/v1/login", json={"username": SPECIALIST, "password": drill["password"]})
        assert login.status_code == 200, login.text
        readable = {item["id"] for item in doctor.get("/api/v1/records").json()["items"]}
        assert readable == {drill["shared"]}
        assert doctor.get(f"/api/v1/records/{drill['shared']}/content").content == drill["contents"][drill["shared"]]
    finally:
        restored.stop()
    verdict = cli(target, "audit", "verify").stdout
    assert "audit trail intact" in verdict and " 0 signed checkpoints" not in verdict


def test_restore_refuses_a_folder_that_is_not_empty(drill, age_key, tmp_path):
    """A target holding anything is refused with exit 2 and a clear message, and left exactly as it was."""
    identity, _ = age_key
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    result = cli(target, "restore", "--from", str(drill["dest"]), "--identity", str(identity), check=False)
    assert result.returncode == 2 and "not empty" in result.stderr and "Traceback" not in result.stderr
    assert [p.name for p in target.iterdir()] == ["notes.txt"] and (target / "notes.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["busy"], "no staging folder left beside it"


def _flip(path: Path, offset: int = -40) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _newest(copy: Path) -> Path:
    return sorted((copy / "snapshots").iterdir())[-1]


def _a_blob(copy: Path) -> Path:
    """The largest blob (the multi-chunk binary record)."""
    blobs = [p for p in (copy / "blobs").rglob("*") if p.is_file() and p.suffix != ".sha256"]
    return max(blobs, key=lambda p: p.stat().st_size)


def _tamper_blob_and_sidecar(copy: Path) -> None:
    blob = _a_blob(copy)
    _flip(blob, 100)
    blob.with_name(blob.name + ".sha256").write_text(hashlib.sha256(blob.read_bytes()).hexdigest() + "\n")


def _remove_every_manifest(copy: Path) -> None:
    for manifest in (copy / "snapshots").glob("*/manifest.json.age"):
        manifest.unlink()


TAMPERING = {
    "state archive": (lambda c: _flip(_newest(c) / "state.tar.age"), "does not match its manifest"),
    "blob": (lambda c: _flip(_a_blob(c), 100), "does not match its manifest"),
    "blob and its sidecar": (_tamper_blob_and_sidecar, "does not match its manifest"),
    "manifest": (lambda c: _flip(_newest(c) / "manifest.json.age"), "does not decrypt"),
    "every manifest removed": (_remove_every_manifest, "no complete snapshot"),
    "blob removed": (lambda c: _a_blob(c).unlink(), "missing"),
}


@pytest.mark.parametrize("damage", list(TAMPERING))
def test_damaged_backups_are_refused(damage, drill, age_key, tmp_path):
    """A changed state archive, blob or manifest, or a backup without manifests, is refused with exit 2 and
    leaves no target folder and no staging folder behind."""
    identity, _ = age_key
    copy = tmp_path / "copy"
    shutil.copytree(drill["dest"], copy)
    change, message = TAMPERING[damage]
    change(copy)
    parent = tmp_path / "restore-here"
    parent.mkdir()
    result = cli(parent / "data", "restore", "--from", str(copy), "--identity", str(identity), check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert list(parent.iterdir()) == []


def test_newest_snapshot_without_manifest_is_skipped_with_a_warning(drill, age_key, tmp_path):
    """A snapshot without its manifest (an interrupted backup) is never restored: the one before it is, and
    the operator is told which was skipped."""
    identity, _ = age_key
    copy = tmp_path / "copy"
    shutil.copytree(drill["dest"], copy)
    (_newest(copy) / "manifest.json.age").unlink()
    result = cli(tmp_path / "data", "restore", "--from", str(copy), "--identity", str(identity))
    assert f"restored snapshot {drill['first'].group(1)}" in result.stdout
    assert f"skipped snapshot {drill['second'].group(1)}" in result.stderr


def test_backup_needs_a_valid_recipient(server, age_key, tmp_path):
    """No --recipient, a malformed one, or a non-age one: exit 2 with a message, and no snapshot is written."""
    dest = tmp_path / "backup"
    cases = [([], "--recipient"), (["--recipient", "age1abc"], "malformed recipient"), (["--recipient", "x"], "age1")]
    for extra, fragment in cases:
        result = cli(server.data_dir, "backup", "--to", str(dest), *extra, env=server.env, check=False)
        assert result.returncode == 2 and fragment in result.stderr and "Traceback" not in result.stderr, extra
        assert not list(dest.glob("snapshots/*")), extra


def test_restore_with_the_wrong_identity_is_refused(drill, tmp_path):
    """An identity the backup was not encrypted to cannot open it: exit 2, nothing restored."""
    other = tmp_path / "other-key.txt"
    subprocess.run([require_tool("age-keygen"), "-o", str(other)], check=True, capture_output=True)
    result = cli(tmp_path / "data", "restore", "--from", str(drill["dest"]), "--identity", str(other), check=False)
    assert result.returncode == 2 and "does not decrypt" in result.stderr
    assert not (tmp_path / "data").exists()


def test_a_record_deleted_during_the_backup_makes_it_copy_the_database_again(server, age_key, tmp_path, monkeypatch):
    """When a blob the database copy names is deleted before it is copied, the backup takes the database again
    and writes a snapshot without that record instead of failing."""
    from medvault.backup import snapshot
    from medvault.config import load_settings

    _, recipient = age_key
    owner = server.account("quolldeleter")["client"]
    kept, gone = (upload(owner, os.urandom(5000), f"{n}.bin").json()["id"] for n in ("kept", "gone"))
    copies = []
    real = snapshot._snapshot_database

    def copy_then_delete(live, target):
        names = real(live, target)
        copies.append(names)
        if len(copies) == 1:
            assert owner.delete(f"/api/v1/records/{gone}").status_code == 204
        return names

    monkeypatch.setattr(snapshot, "_snapshot_database", copy_then_delete)
    done = snapshot.take(load_settings({"data_dir": server.data_dir}), tmp_path / "backup", [recipient])
    assert len(copies) == 2 and len(copies[0]) == len(copies[1]) + 1
    assert done.blobs == len(copies[1]) and owner.get(f"/api/v1/records/{kept}").status_code == 200


def test_a_second_backup_into_the_same_folder_waits_its_turn(drill, server, age_key):
    """While one backup holds the destination, another is refused with exit 2 and leaves the folder as it was."""
    import fcntl

    _, recipient = age_key
    dest = drill["dest"]
    before = sorted(str(p) for p in dest.rglob("*"))
    with (dest / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = cli(server.data_dir, "backup", "--to", str(dest), "--recipient", recipient, check=False)
    assert result.returncode == 2 and "another backup is writing" in result.stderr
    assert sorted(str(p) for p in dest.rglob("*")) == before


def test_a_killed_backups_plaintext_stage_is_removed_by_the_next_one(drill, server, age_key, tmp_path):
    """`kill -9` runs no clean-up: the stage it leaves in the data folder (a plaintext database copy) is removed
    by the next backup, while the stage of a backup still running (its `.held` file locked) is left alone."""
    import fcntl

    _, recipient = age_key
    killed = server.data_dir / ".backup-killed"
    killed.mkdir()
    (killed / "medvault.db").write_bytes(b"plaintext copy")
    running = server.data_dir / ".backup-running"
    running.mkdir()
    with (running / ".held").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        _backup(server, tmp_path / "again", recipient)
        assert not killed.exists() and running.exists()
    shutil.rmtree(running)


def test_a_killed_restores_stage_is_removed_by_the_next_one(drill, age_key, tmp_path):
    """A restore killed before its rename leaves its hidden stage beside the target (the server secret and TLS
    key, restored): the next restore of that target removes it, leaves alone one a running restore holds, and
    the restored folder holds no lock file."""
    from medvault.backup.files import holding

    identity, _ = age_key
    target = tmp_path / "restored"
    killed = tmp_path / ".restored.restoring-dead0000"
    (killed / "tls").mkdir(parents=True)
    (killed / "server.secret").write_bytes(b"secret of a killed restore")
    running = tmp_path / ".restored.restoring-live0000"
    running.mkdir()
    other = tmp_path / ".elsewhere.restoring-dead0000"  # another target's: not this restore's to judge
    other.mkdir()
    with holding(running):
        cli(target, "restore", "--from", str(drill["dest"]), "--identity", str(identity))
        assert not killed.exists() and running.exists() and other.exists()
    assert (target / "server.secret").exists() and not (target / ".held").exists()
    assert {p.name for p in tmp_path.iterdir()} == {other.name, running.name, "restored"}
