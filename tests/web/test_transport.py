"""HTTPS only, shown by outside tools: testssl.sh finds nothing weak, and a packet capture sees no plaintext."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest

from tests.support import Server, require_tool, upload

BAD = {"LOW", "MEDIUM", "HIGH", "CRITICAL", "WARN"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server whose guard is off: testssl's hundreds of handshakes would (rightly) get it banned.
    That the guard bans TLS scanners is shown in tests/guard/test_server_guard.py."""
    srv = Server(tmp_path_factory.mktemp("tls") / "data", env={"MEDVAULT_GUARD_ENABLED": "false"})
    srv.init()
    srv.start()
    yield srv
    srv.stop()


def test_testssl_finds_no_weak_protocol_cipher_or_header(server, tmp_path):
    """testssl.sh: only TLS 1.2/1.3, only forward-secret AEAD suites, HSTS and security headers all fine."""
    testssl = require_tool("testssl")
    report = tmp_path / "testssl.json"
    subprocess.run(
        [
            testssl,
            "--quiet",
            "--color",
            "0",
            "--warnings",
            "off",
            "-p",
            "-s",
            "-f",
            "-h",
            "--jsonfile-pretty",
            str(report),
            f"{server.base}/login",
        ],
        capture_output=True,
        timeout=240,
        check=False,
    )
    findings = [
        f
        for group in json.loads(report.read_text())["scanResult"][0].values()
        if isinstance(group, list)
        for f in group
    ]
    by_id = {f["id"]: f for f in findings}
    for proto in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert by_id[proto]["finding"] == "not offered", by_id[proto]
    for weak in (
        "cipherlist_NULL",
        "cipherlist_aNULL",
        "cipherlist_EXPORT",
        "cipherlist_LOW",
        "cipherlist_3DES_IDEA",
        "cipherlist_AVERAGE",
    ):
        assert by_id[weak]["finding"] == "not offered", by_id[weak]
    assert by_id["PFS"]["severity"] == "OK"
    assert by_id["HSTS_time"]["severity"] == "OK"
    assert by_id["X-Frame-Options"]["severity"] == "OK"
    bad = [f for f in findings if f["severity"] in BAD]
    assert bad == [], bad


def test_capture_of_an_upload_holds_no_plaintext(server, tmp_path):
    """tshark on loopback: the HTTPS upload's marker never crosses the wire; plain HTTP only ever redirects."""
    tshark = require_tool("tshark")
    pcap = tmp_path / "cap.pcapng"
    capture = subprocess.Popen(
        [
            tshark,
            "-i",
            "lo",
            "-f",
            f"tcp port {server.https_port} or tcp port {server.http_port}",
            "-w",
            str(pcap),
            "-q",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(2)  # let tshark open the interface
        marker = b"WIRE-MARKER-6d2f1a"
        user = server.account("wire")
        assert upload(user["client"], marker * 1000, "wire.txt", {"title": marker.decode()}).status_code == 201
        with httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}") as plain:
            leaked = plain.post("/api/v1/records", content=b"PLAIN-CONTROL-" + marker)
            assert leaked.status_code == 308
        time.sleep(1)
    finally:
        capture.terminate()
        capture.wait(timeout=10)
    raw = pcap.read_bytes()
    assert b"PLAIN-CONTROL-" + marker in raw, "capture saw the plain-HTTP control: it works"
    assert raw.count(marker) == 1, "the marker crossed the wire only inside the plain-HTTP control request"
    codes = subprocess.run(
        [
            tshark,
            "-r",
            str(pcap),
            "-Y",
            f"http.response && tcp.srcport == {server.http_port}",
            "-T",
            "fields",
            "-e",
            "http.response.code",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    assert codes and set(codes) == {"308"}
