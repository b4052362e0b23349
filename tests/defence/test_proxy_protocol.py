"""PROXY protocol v1 from a trusted TCP proxy: the named client is logged, jailed and refused before TLS;
the proxy itself never is, and nobody else can claim an address with such a line."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time

import pytest

from medvault.proxyheader import ProxyHeaderError, parse_v1
from tests.support import Server, cli

PROXY = "127.0.0.91"


def test_parse_v1_reads_only_well_formed_lines() -> None:
    """TCP4/TCP6 lines give the source; UNKNOWN gives None; anything malformed is an error."""
    assert parse_v1(b"PROXY TCP4 203.0.113.9 10.0.0.1 51234 443\r\n") == ("203.0.113.9", 51234)
    assert parse_v1(b"PROXY TCP6 2001:db8::7 2001:db8::1 1 443\r\n") == ("2001:db8::7", 1)
    assert parse_v1(b"PROXY UNKNOWN\r\n") is None
    for bad in (
        b"PROXY TCP4 203.0.113.9 10.0.0.1 51234 443\n",  # no CR
        b"PROXY TCP4 2001:db8::7 10.0.0.1 1 443\r\n",  # family mismatch
        b"PROXY TCP4 203.0.113.9 10.0.0.1 70000 443\r\n",  # port out of range
        b"PROXY TCP4 203.0.113.9 10.0.0.1 012 443\r\n",  # leading zero
        b"PROXY TCP4 203.0.113.9 10.0.0.1 1\r\n",  # missing field
        b"GET / HTTP/1.1\r\n",
        b"PROXY TCP4 " + b"9" * 100 + b"\r\n",  # longer than the specification allows
        b"PROXY TCP4 203.0.113.\xff 10.0.0.1 1 2\r\n",
    ):
        with pytest.raises(ProxyHeaderError):
            parse_v1(bad)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(
        tmp_path_factory.mktemp("proxyproto") / "data",
        env={"MEDVAULT_TRUSTED_PROXIES": f"{PROXY}/32", "MEDVAULT_PROXY_PROTOCOL": "true"},
    )
    srv.init()
    srv.start()
    yield srv
    srv.stop()


def _via_proxy(server: Server, header: bytes, path: str = "/login", split: bool = False) -> int | None:
    """Connect from the proxy's address, send `header`, then HTTPS; the status, or None when cut off.

    With `split`, the header and the ClientHello go in one packet (as a real proxy may send them)."""
    raw = socket.create_connection((server.host, server.https_port), timeout=5, source_address=(PROXY, 0))
    try:
        context = server.ssl_context()
        if split:
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = context.wrap_bio(incoming, outgoing, server_hostname=server.host)
            with contextlib.suppress(ssl.SSLWantReadError):
                tls.do_handshake()
            raw.sendall(header + outgoing.read())  # PROXY line and ClientHello together
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    if out := outgoing.read():
                        raw.sendall(out)
                    data = raw.recv(65536)
                    if not data:
                        return None
                    incoming.write(data)
            if out := outgoing.read():
                raw.sendall(out)
            tls.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            raw.sendall(outgoing.read())
            answer = b""
            while b"\r\n" not in answer:
                data = raw.recv(65536)
                if not data:
                    break
                incoming.write(data)
                with contextlib.suppress(ssl.SSLWantReadError):
                    answer += tls.read(65536)
        else:
            raw.sendall(header)
            with context.wrap_socket(raw, server_hostname=server.host) as tls:
                tls.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                answer = tls.recv(65536)
        return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    except (OSError, ssl.SSLError):
        return None
    finally:
        raw.close()


def _logged(server: Server, client: str, seconds: float = 5) -> bool:
    """Whether an access-log line (Apache combined format) starts with `client`."""
    log = server.data_dir / "logs" / "access.log"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if log.exists() and any(line.startswith(f"{client} ") for line in log.read_text().splitlines()):
            return True
        time.sleep(0.05)
    return False


def test_the_named_client_is_the_one_logged(server: Server) -> None:
    """A request through the proxy is logged with the PROXY line's client, also when the ClientHello shares
    the line's packet; `PROXY UNKNOWN` keeps the proxy's own address."""
    assert _via_proxy(server, b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 443\r\n", "/login?a=1") == 200
    assert _logged(server, "198.51.100.7")
    assert _via_proxy(server, b"PROXY TCP4 198.51.100.8 127.0.0.1 40001 443\r\n", "/login?b=2", split=True) == 200
    assert _logged(server, "198.51.100.8")
    assert _via_proxy(server, b"PROXY UNKNOWN\r\n", "/login?c=3") == 200
    assert _logged(server, PROXY)


def test_a_banned_client_behind_the_proxy_is_refused_before_tls(server: Server) -> None:
    """Probes through the proxy ban the named client at the edge; other clients and the proxy go on."""
    scanner = b"PROXY TCP4 198.51.100.66 127.0.0.1 40002 443\r\n"
    for path in ("/.env", "/wp-login.php", "/.git/config", "/phpmyadmin/"):
        _via_proxy(server, scanner, path)
    deadline = time.monotonic() + 5
    while _via_proxy(server, scanner) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _via_proxy(server, scanner) is None  # cut before the TLS handshake
    listed = cli(server.data_dir, "guard", "list").stdout
    assert "198.51.100.66/32" in listed and PROXY not in listed
    assert _via_proxy(server, b"PROXY TCP4 198.51.100.67 127.0.0.1 40003 443\r\n") == 200
    assert _via_proxy(server, b"PROXY UNKNOWN\r\n") == 200  # the proxy's own health check


def test_a_malformed_line_closes_only_that_connection(server: Server) -> None:
    """A proxy connection without a valid PROXY line is closed and the event logged; the next one works."""
    assert _via_proxy(server, b"PROXY TCP4 nonsense\r\n") is None
    security = server.data_dir / "logs" / "security.log"
    deadline = time.monotonic() + 5
    while "proxy-header-invalid" not in security.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"proxy-header-invalid ip={PROXY}" in security.read_text()
    assert _via_proxy(server, b"PROXY TCP4 198.51.100.9 127.0.0.1 40004 443\r\n") == 200


def test_nobody_else_can_claim_an_address(server: Server) -> None:
    """From an untrusted address a PROXY line is not read (the handshake fails) and plain HTTPS just works."""
    raw = socket.create_connection((server.host, server.https_port), timeout=5, source_address=("127.0.0.92", 0))
    with raw:
        raw.sendall(b"PROXY TCP4 203.0.113.50 127.0.0.1 1 443\r\n")
        with pytest.raises((ssl.SSLError, OSError)):
            server.ssl_context().wrap_socket(raw, server_hostname=server.host).do_handshake()
    with server.client("127.0.0.92") as client:
        assert client.get("/login").status_code == 200
    assert not _logged(server, "203.0.113.50", seconds=0.5)
