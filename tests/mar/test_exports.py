"""Offline exports: files the real `age` tool decrypts with a fresh per-export identity (never the long-term
key), and a plain ZIP with a CSV index; both behind a fresh password check."""

from __future__ import annotations

import base64
import csv
import io
import os
import subprocess
import zipfile

import pytest

from tests.support import require_tool, upload

FILES = [
    (
        b"%PDF-1.4 knee MARKER-7f3a " + os.urandom(3000),
        "knee scan.pdf",
        {"title": '=HYPERLINK("x")', "facility": "St. Mary"},
    ),
    (
        "Séance: sleep MARKER-7f3a\n".encode(),
        "notes.txt",
        {"title": "Notes", "service_date": "2024-05", "tags": ["a", "b"]},
    ),
]


@pytest.fixture(scope="module")
def patient(server):
    account = server.account("agepat")
    ids = [upload(account["client"], content, name, meta).json()["id"] for content, name, meta in FILES]
    return {**account, "ids": ids}


def _age_export(patient) -> dict:
    response = patient["client"].post("/api/v1/export/age", json={"password": patient["password"]})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


def _decrypt(identity_file, data: bytes) -> subprocess.CompletedProcess:
    age = require_tool("age")
    return subprocess.run([age, "--decrypt", "--identity", str(identity_file)], input=data, capture_output=True)


def test_age_export_decrypts_with_its_own_identity_only(patient, tmp_path):
    """Every file decrypts with the returned identity to the original bytes; each has one recipient, the fresh one."""
    keygen = require_tool("age-keygen")
    made = _age_export(patient)
    assert made["identity"].startswith("AGE-SECRET-KEY-1") and made["records"] == 2
    derived = subprocess.run([keygen, "-y"], input=made["identity"].encode(), capture_output=True, check=True)
    assert derived.stdout.decode().strip() == made["recipient"]
    identity = tmp_path / "identity.txt"
    identity.write_text(made["identity"] + "\n")
    archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(made["archive"])))
    names = sorted(archive.namelist())
    assert names == sorted(["README.txt", "index.csv.age", *(f"records/{rid}.age" for rid in patient["ids"])])
    for (content, _, _), rid in zip(FILES, patient["ids"], strict=True):
        sealed = archive.read(f"records/{rid}.age")
        assert b"MARKER-7f3a" not in sealed
        header = sealed.split(b"\n---")[0].decode()
        assert header.startswith("age-encryption.org/v1\n")
        stanzas = [line for line in header.splitlines() if line.startswith("-> ")]
        assert len(stanzas) == 1 and stanzas[0].startswith("-> X25519 "), "sealed to one X25519 recipient only"
        opened = _decrypt(identity, sealed)
        assert opened.returncode == 0, opened.stderr
        assert opened.stdout == content
    index = _decrypt(identity, archive.read("index.csv.age"))
    rows = list(csv.DictReader(io.StringIO(index.stdout.decode("utf-8-sig"))))
    assert [(r["file"], r["filename"]) for r in rows] == [
        (f"records/{rid}.age", name) for (_, name, _), rid in zip(FILES, patient["ids"], strict=True)
    ]
    assert rows[0]["title"] == '\'=HYPERLINK("x")', "formula-like text is defused for spreadsheets"
    assert rows[1]["tags"] == "a; b" and rows[1]["service_date"] == "2024-05"
    other = _age_export(patient)
    assert other["identity"] != made["identity"] and other["recipient"] != made["recipient"]
    stranger = tmp_path / "other.txt"
    stranger.write_text(other["identity"] + "\n")
    assert _decrypt(stranger, archive.read("index.csv.age")).returncode != 0, "another export's identity fails"


def test_plain_zip_with_index(patient):
    """The plain ZIP holds each file under records/<id>-<name> and an index.csv naming them."""
    response = patient["client"].post("/api/v1/export/zip", json={"password": patient["password"]})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].startswith("attachment;")
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    rows = list(csv.DictReader(io.StringIO(archive.read("index.csv").decode("utf-8-sig"))))
    assert len(rows) == 2
    for (content, name, meta), rid, row in zip(FILES, patient["ids"], rows, strict=True):
        assert row["file"] == f"records/{rid}-{name}" and row["id"] == rid
        assert archive.read(row["file"]) == content
        assert row["size"] == str(len(content)) and row["signature_valid"] == "true"
        assert row["facility"] == meta.get("facility", "")


def test_exports_need_a_fresh_password(server, patient):
    """A wrong password, a missing CSRF token or a specialist's session gets no export."""
    client = patient["client"]
    for path in ("/api/v1/export/age", "/api/v1/export/zip"):
        wrong = client.post(path, json={"password": "not my password"})
        assert wrong.status_code == 401 and "archive" not in wrong.text
        assert client.post(path, json={}).status_code == 400
        token = client.headers.pop("X-CSRF-Token")
        assert client.post(path, json={"password": patient["password"]}).status_code == 403
        client.headers["X-CSRF-Token"] = token
    doctor = server.account("agedoc", role="specialist")
    for path in ("/api/v1/export/age", "/api/v1/export/zip"):
        assert doctor["client"].post(path, json={"password": doctor["password"]}).status_code == 403
    trail = client.get("/api/v1/audit").json()["items"]
    assert {e["record_id"] for e in trail if e["action"] == "export"} <= set(patient["ids"])
