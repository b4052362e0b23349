"""The guard inside a real server: scanners and noise banned at the edge, password guessing refused in
the application without locking out known browsers, log injection framing no one, bans via the CLI."""

from __future__ import annotations

import contextlib
import socket
import time

import httpx
import pytest

from tests.attackers import client_from, is_refused
from tests.support import cli


@pytest.fixture(scope="module")
def owner(server):
    """A legitimate user on 127.0.0.1 who has signed in before (so her browser holds a device cookie)."""
    return server.account("owner")


def _wait_for_lines(read, seconds: float = 5) -> bool:
    """The access log is written once the answer has gone out, so a reader may have to wait a moment."""
    deadline = time.monotonic() + seconds
    while not read() and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(read())


def _wait_refused(server, source: str, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if is_refused(server, source):
            return True
        time.sleep(0.2)
    return False


def test_probe_paths_ban_the_scanner_only(server, owner):
    """Three probes of paths MedVault does not have ban the prober before TLS; the user carries on."""
    with client_from(server, "127.0.0.21") as c:
        for path in ("/.env", "/wp-login.php", "/.git/config"):
            assert c.get(path).status_code == 404
    assert is_refused(server, "127.0.0.21")
    with pytest.raises(httpx.TransportError), client_from(server, "127.0.0.21") as c:
        c.get("/login")
    assert owner["client"].get("/api/v1/records").status_code == 200


def test_mistyping_a_url_twice_is_not_a_ban(server):
    """Two 404s from a person's typos leave the address free."""
    with client_from(server, "127.0.0.22") as c:
        assert c.get("/recrods").status_code == 404
        assert c.get("/reocrds").status_code == 404
        assert c.get("/login").status_code == 200


def test_scanner_user_agent_is_banned(server):
    """A known scanner's user agent (sqlmap) is banned after the jail's few requests."""
    with client_from(server, "127.0.0.23", headers={"User-Agent": "sqlmap/1.7.2#stable (https://sqlmap.org)"}) as c:
        for _ in range(3):
            c.get("/login")
    assert is_refused(server, "127.0.0.23")


def test_password_guessing_refused_in_app_known_browser_keeps_access(server, owner):
    """After repeated failures one address's unknown clients are refused (403), but a browser that signed in
    to that account before keeps its right to try, from the very same address."""
    trusted = client_from(server, "127.0.0.31")
    assert trusted.post("/api/v1/login", json={"username": "owner", "password": owner["password"]}).status_code == 200
    with client_from(server, "127.0.0.31") as attacker:
        answers = [
            attacker.post("/api/v1/login", json={"username": f"user{i}", "password": "guess-guess-1"}).status_code
            for i in range(12)
        ]
        assert answers[0] == 401 and answers[-1] == 403, answers
        assert attacker.get("/login").status_code == 200, "a login refusal is not an edge ban"
    again = trusted.post("/api/v1/login", json={"username": "owner", "password": owner["password"]})
    assert again.status_code == 200
    trusted.close()


def test_account_slowdown_is_the_same_for_unknown_accounts(server):
    """Guessing one account from many addresses meets a growing 429 with Retry-After; an account that does
    not exist gets exactly the same answers."""
    server.account("target")

    def attack(username: str) -> list[tuple[int, str | None]]:
        out = []
        for i in range(7):
            with client_from(server, f"127.0.1.{i + 1 if username == 'target' else i + 101}") as c:
                r = c.post("/api/v1/login", json={"username": username, "password": "wrong-password-x"})
                out.append((r.status_code, r.headers.get("retry-after")))
        return out

    real, ghost = attack("target"), attack("no-such-person")
    assert [s for s, _ in real] == [s for s, _ in ghost]
    assert real[:5] == [(401, None)] * 5 and real[5][0] == 429 and int(real[5][1]) >= 1


def test_log_injection_frames_no_one(server):
    """A user name carrying another address and a forged user agent ban only their real sender."""
    with client_from(server, "127.0.0.41", headers={"User-Agent": 'x" 10.0.0.7 "Nikto'}) as c:
        for _ in range(3):
            c.post(
                "/api/v1/login",
                json={
                    "username": "x from 10.0.0.7 ip=10.0.0.7\n2026 auth-failure ip=10.0.0.8",
                    "password": "whatever-long",
                },
            )
    log = (server.data_dir / "logs" / "security.log").read_text()
    forged = [line for line in log.splitlines() if "10.0.0.7" in line]
    assert forged and all(" ip=127.0.0.41 " in line for line in forged)
    assert all("\n" not in line and "\\x0a" in line for line in forged if "10.0.0.8" in line)
    listed = cli(server.data_dir, "guard", "list").stdout
    assert "10.0.0.7" not in listed and "10.0.0.8" not in listed and "127.0.0.41" in listed


def test_spoofed_forwarded_for_is_ignored(server):
    """X-Forwarded-For from an untrusted peer changes nothing: the socket address is the one logged."""
    with client_from(server, "127.0.0.42", headers={"X-Forwarded-For": "10.9.9.9"}) as c:
        c.get("/login", headers={"User-Agent": "spoof-probe"})
    log = server.data_dir / "logs" / "access.log"

    def probe_lines() -> list[str]:
        return [line for line in log.read_text().splitlines() if '"spoof-probe"' in line]

    assert _wait_for_lines(probe_lines), "the request was never logged"
    assert all(line.startswith("127.0.0.42 ") for line in probe_lines()), probe_lines()


def test_tls_noise_is_banned(server):
    """Failed TLS handshakes (what TLS scanners make by the hundred) ban their sender."""
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", server.https_port), source_address=("127.0.0.43", 0)) as s:
            s.sendall(b"\x16\x03\x01\x00\x05hello-not-tls")
            s.settimeout(2)
            with contextlib.suppress(OSError):
                s.recv(100)
    assert _wait_refused(server, "127.0.0.43")
    assert not is_refused(server, "127.0.0.44")


def test_cli_ban_and_unban_reach_the_running_server(server):
    """`medvault guard ban/unban` take effect on the running server within seconds."""
    cli(server.data_dir, "guard", "ban", "127.0.0.45", "--seconds", "600")
    assert _wait_refused(server, "127.0.0.45")
    cli(server.data_dir, "guard", "unban", "127.0.0.45")
    deadline = time.monotonic() + 5
    while is_refused(server, "127.0.0.45") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not is_refused(server, "127.0.0.45")
    bad = cli(server.data_dir, "guard", "ban", "not-an-ip", check=False)
    assert bad.returncode == 2 and "not an IP" in bad.stderr


def test_admin_api_lists_and_lifts_bans(server):
    """The admin API shows bans and jail counts and lifts a ban; others are refused."""
    admin = server.account("guardadmin", role="admin")
    c = admin["client"]
    assert c.post("/api/v1/admin/bans", json={"ip": "2001:db8::1", "seconds": 60}).status_code == 201
    status = c.get("/api/v1/admin/guard").json()
    assert "2001:db8::/64" in [b["network"] for b in status["bans"]]
    assert {"scan", "errors", "flood", "noise", "login"} <= set(status["jails"])
    assert c.post("/api/v1/admin/bans/lift", json={"ip": "2001:db8::/64"}).status_code == 200
    patient = server.account("nosy")
    assert patient["client"].get("/api/v1/admin/guard").status_code == 403


def test_bans_survive_a_restart(tmp_path):
    """A ban made before a restart still refuses the address after it."""
    from tests.support import Server

    srv = Server(tmp_path / "data")
    srv.init()
    srv.start()
    try:
        with client_from(srv, "127.0.0.46") as c:
            for path in ("/.env", "/phpmyadmin/", "/cgi-bin/x"):
                c.get(path)
        assert is_refused(srv, "127.0.0.46")
        srv.stop()
        srv.start()
        assert is_refused(srv, "127.0.0.46")
        assert not is_refused(srv, "127.0.0.47")
    finally:
        srv.stop()


def test_trusted_proxy_forwarded_bans_and_never_the_proxy(tmp_path):
    """Behind a trusted proxy the forwarded client is banned (in the application) and the proxy never is."""
    from tests.support import Server

    srv = Server(tmp_path / "data", env={"MEDVAULT_TRUSTED_PROXIES": "127.0.0.90/32"})
    srv.init()
    srv.start()
    try:
        with client_from(srv, "127.0.0.90") as proxy:
            for path in ("/.env", "/wp-login.php", "/.git/config"):
                proxy.get(path, headers={"X-Forwarded-For": "203.0.113.9"})
            assert proxy.get("/login", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
            assert proxy.get("/login", headers={"X-Forwarded-For": "203.0.113.10"}).status_code == 200
            for path in ("/.env", "/wp-login.php", "/.git/config", "/phpmyadmin/"):
                proxy.get(path)  # the proxy's own address: ignored by every jail
            assert proxy.get("/login").status_code == 200
        listed = cli(srv.data_dir, "guard", "list").stdout
        assert "203.0.113.9/32" in listed and "127.0.0.90" not in listed
        assert not is_refused(srv, "127.0.0.90")
    finally:
        srv.stop()
