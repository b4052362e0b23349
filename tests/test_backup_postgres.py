"""Backups of a PostgreSQL instance: `pg_dump` of one snapshot with the blobs it names, encrypted like the
SQLite ones; the restore drill loads it into an empty database and a new server serves every record intact."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest

from tests.conftest import PG_ADMIN
from tests.support import Server, cli, require_tool, upload
from tests.test_backup import SUMMARY, age_key  # noqa: F401 - the module-scoped age identity fixture
from tests.vault.test_at_rest import _all_bytes_under

MARKER = b"WOMBAT-LAB-RESULT-8841"


@pytest.fixture
def empty_database():
    """A fresh, empty PostgreSQL database to restore into, dropped afterwards."""
    name = f"medvault_restore_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def live(tmp_path_factory, pg_url, age_key):  # noqa: F811 - the fixture imported above
    require_tool("pg_dump")
    _, recipient = age_key
    server = Server(tmp_path_factory.mktemp("pglive") / "data", env={"MEDVAULT_DATABASE_URL": pg_url})
    server.init()
    server.start()
    patient = server.account("wombatpatient")
    contents = {}
    for name, data in (("lab.txt", b"Lab: " + MARKER), ("scan.bin", bytes(range(256)) * 900)):
        made = upload(patient["client"], data, name, {"title": name}, "application/octet-stream")
        assert made.status_code == 201, made.text
        contents[made.json()["id"]] = data
    dest = tmp_path_factory.mktemp("pgbackups") / "backup"
    out = cli(server.data_dir, "backup", "--to", str(dest), "--recipient", recipient, "--quiet", env=server.env)
    summary = SUMMARY.search(out.stdout)
    assert summary and int(summary.group(2)) == 2, out.stdout
    yield {"server": server, "dest": dest, "contents": contents, "password": patient["password"]}
    server.stop()


def test_the_backup_holds_no_plaintext_and_leaves_no_dump_behind(live):
    for path, data in _all_bytes_under(live["dest"]):
        assert MARKER.lower() not in data.lower() and b"wombatpatient" not in data, path
    assert not list(live["server"].data_dir.glob(".backup-*"))


def test_restore_drill_into_an_empty_database(live, age_key, empty_database, tmp_path):  # noqa: F811
    identity, _ = age_key
    target = tmp_path / "restored"
    args = ("restore", "--from", str(live["dest"]), "--identity", str(identity), "--quiet")
    out = cli(target, *args, "--database-url", empty_database).stdout
    assert re.search(r"restored snapshot \S+ into .*: 2 blobs verified", out)
    assert not (target / "medvault.pgdump").exists(), "the plaintext dump is removed once loaded"
    restored = Server(target, env={"MEDVAULT_DATABASE_URL": empty_database})
    restored.start()
    try:
        client = restored.client()
        login = client.post("/api/v1/login", json={"username": "wombatpatient", "password": live["password"]})
        assert login.status_code == 200, login.text
        for rid, data in live["contents"].items():
            assert client.get(f"/api/v1/records/{rid}").json()["signature_valid"] is True
            assert client.get(f"/api/v1/records/{rid}/content").content == data
    finally:
        restored.stop()
    verdict = cli(target, "audit", "verify", "--database-url", empty_database).stdout
    assert "audit trail intact" in verdict
    again = cli(tmp_path / "again", *args, "--database-url", empty_database, check=False)
    assert again.returncode == 2 and "not empty" in again.stderr and not (tmp_path / "again").exists()


def test_a_postgresql_snapshot_needs_a_database_to_restore_into(live, age_key, tmp_path):  # noqa: F811
    identity, _ = age_key
    done = cli(tmp_path / "r", "restore", "--from", str(live["dest"]), "--identity", str(identity), check=False)
    assert done.returncode == 2 and "--database-url" in done.stderr
    assert not (tmp_path / "r").exists()
