"""Test support: a real MedVault process on free loopback ports, over real TLS, with real accounts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).with_name("medvault")
ON_CI = bool(os.environ.get("CI"))


def require_tool(name: str) -> str:
    """Path of an external tool; on CI a missing tool fails the test instead of skipping it."""
    path = shutil.which(name)
    if path is None:
        if ON_CI:
            pytest.fail(f"{name} is required on CI (make test-tools installs it)")
        pytest.skip(f"{name} not installed (would fail on CI)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(data_dir: Path, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run(
        [str(BIN), *args, "--data-dir", str(data_dir)], capture_output=True, text=True, env=full_env, timeout=60
    )
    if check and result.returncode != 0:
        raise AssertionError(f"medvault {' '.join(args)} failed: {result.stderr}")
    return result


class Server:
    """`medvault serve` in its own process; `client()` speaks HTTPS verified against its own certificate.

    Subclasses may run it elsewhere: `command_prefix` (e.g. `ip netns exec NS`), `host` and `probe_source`.
    """

    command_prefix: tuple[str, ...] = ()
    host = "127.0.0.1"
    probe_source: str | None = None

    def __init__(self, data_dir: Path, env: dict | None = None):
        self.data_dir = data_dir
        self.https_port = free_port()
        self.http_port = free_port()
        self.tmp_dir = data_dir.parent / f"{data_dir.name}-tmp"
        self.tmp_dir.mkdir(exist_ok=True)
        self.env = {**os.environ, "TMPDIR": str(self.tmp_dir), **(env or {})}
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"https://{self.host}:{self.https_port}"

    def init(self) -> str:
        return cli(self.data_dir, "init", env=self.env).stdout

    def start(self) -> Server:
        log = (self.data_dir.parent / f"{self.data_dir.name}-server.log").open("ab")
        self.proc = subprocess.Popen(
            [
                *self.command_prefix,
                str(BIN),
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--https-port",
                str(self.https_port),
                "--http-port",
                str(self.http_port),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a test can kill -9 the node and its workers
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}")
            try:
                source = (self.probe_source, 0) if self.probe_source else None
                with socket.create_connection((self.host, self.https_port), timeout=0.5, source_address=source):
                    return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("server did not start within 20 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.data_dir / "tls" / "cert.pem"))

    def client(self, source: str | None = None, **kwargs) -> httpx.Client:
        """An HTTPS client, optionally leaving from a given loopback address."""
        transport = httpx.HTTPTransport(local_address=source, verify=self.ssl_context(), retries=0)
        return httpx.Client(base_url=self.base, transport=transport, timeout=60, **kwargs)

    def invite(self, name: str, role: str = "patient", *extra: str) -> str:
        out = cli(self.data_dir, "user", "invite", name, "--role", role, "--json", *extra, env=self.env)
        return json.loads(out.stdout)["code"]

    def account(
        self, name: str, role: str = "patient", password: str = "correct horse battery", source: str | None = None
    ) -> dict:
        """Invite, accept and log in; return a dict with client, csrf token, recovery key and password."""
        code = self.invite(name, role)
        client = self.client(source)
        accepted = client.post("/api/v1/invitations/accept", json={"code": code, "password": password})
        assert accepted.status_code == 201, accepted.text
        login = client.post("/api/v1/login", json={"username": name, "password": password})
        assert login.status_code == 200, login.text
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        return {"client": client, "recovery_key": accepted.json()["recovery_key"], "password": password, "name": name}


def begin_raw_upload(server: Server, user: dict, declared: int = 50_000_000) -> ssl.SSLSocket:
    """A TLS connection that has sent an upload's headers and its file part's head, announcing `declared` file
    bytes: the caller sends some of them and kills the server mid-upload."""
    head = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    cookie = "; ".join(f"{k}={v}" for k, v in user["client"].cookies.items())
    request = (
        f"POST /api/v1/records HTTP/1.1\r\nHost: {server.host}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {len(head) + declared}\r\nCookie: {cookie}\r\n"
        f"X-CSRF-Token: {user['client'].headers['X-CSRF-Token']}\r\n\r\n"
    ).encode() + head
    raw = socket.create_connection((server.host, server.https_port))
    tls = server.ssl_context().wrap_socket(raw, server_hostname=server.host)
    tls.sendall(request)
    return tls


def add_entry(client: httpx.Client, kind: str, data: dict, patient: str | None = None) -> str:
    """Create a chart entry through the API (in `patient`'s chart, or the caller's own); its id."""
    made = client.post("/api/v1/charts/entries", json={"kind": kind, "data": data, "patient": patient})
    assert made.status_code == 201, made.text
    return made.json()["id"]


def png_bytes(width: int = 96, height: int = 64) -> bytes:
    """A small valid RGB PNG (a gradient), made without an imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 160)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def upload(
    client: httpx.Client,
    content: bytes,
    filename: str = "scan.pdf",
    metadata: dict | None = None,
    content_type: str = "application/pdf",
) -> httpx.Response:
    files = {"file": (filename, content, content_type)}
    data = {"metadata": json.dumps(metadata)} if metadata is not None else None
    return client.post("/api/v1/records", files=files, data=data)
