"""MedVault's own filters on MedVault's own log lines."""

from pathlib import Path

import pytest

from medvault.guard.filterfile import load_filter
from medvault.guard.matcher import Failure, Filter

FILTERS = Path(__file__).resolve().parents[2] / "src/medvault/guard/filters"
NOW = 1_800_000_000.0


@pytest.fixture
def auth() -> Filter:
    return Filter(load_filter(FILTERS / "medvault-auth.conf"))


def test_auth_failure_gives_address_user_and_utc_time(auth: Filter) -> None:
    """An auth-failure line yields its ip= address, the user and the UTC time of the line."""
    got = auth.match('2026-11-26T01:53:40.123Z medvault[1234]: auth-failure ip=203.0.113.7 user="alice"', NOW)
    assert isinstance(got, Failure)
    assert (got.host, got.time) == ("203.0.113.7", 1795658020.0)


def test_user_name_cannot_frame_another_address(auth: Filter) -> None:
    """A user name like `x from 10.0.0.7` attributes the failure only to the real ip= address."""
    line = '2026-11-26T01:53:40.123Z medvault[1234]: auth-failure ip=203.0.113.7 user="x from 10.0.0.7"'
    got = auth.match(line, NOW)
    assert isinstance(got, Failure) and got.host == "203.0.113.7"
    forged = '2026-11-26T01:53:40.123Z medvault[1234]: auth-success ip=198.51.100.2 user="auth-failure ip=10.0.0.7"'
    assert auth.match(forged, NOW) is None


def test_auth_success_and_flood_events_in_normal_mode(auth: Filter) -> None:
    """Normal mode ignores successes and connection-level events."""
    for event in ('auth-success ip=203.0.113.8 user="bob"', "tls-handshake-failure ip=203.0.113.9"):
        assert auth.match(f"2026-11-26T01:53:40.123Z medvault[1]: {event}", NOW) is None


@pytest.mark.parametrize("event", ["tls-handshake-failure", "request-incomplete", "header-timeout"])
def test_aggressive_mode_counts_connection_events(event: str) -> None:
    """mode=aggressive also counts TLS failures, incomplete requests and header timeouts."""
    flt = Filter(load_filter(FILTERS / "medvault-auth.conf", {"mode": "aggressive"}))
    got = flt.match(f"2026-11-26T01:53:40Z medvault[1]: {event} ip=2001:db8::7", NOW)
    assert isinstance(got, Failure) and got.host == "2001:db8::7"


SCAN = [
    ('"GET /.env HTTP/1.1" 404 1 "-" "curl/8"', True),
    ('"GET /.git/config HTTP/1.1" 404 1 "-" "curl/8"', True),
    ('"POST /wp-login.php HTTP/1.1" 404 1 "-" "Mozilla/5.0"', True),
    ('"GET /phpMyAdmin/index.php HTTP/1.1" 404 1 "-" "Mozilla/5.0"', True),
    ('"GET /cgi-bin/luci HTTP/1.1" 404 1 "-" "Mozilla/5.0"', True),
    ('"GET /static/../../etc/passwd HTTP/1.1" 400 1 "-" "Mozilla/5.0"', True),
    ('"GET /search?q=1%27%20OR%201=1 HTTP/1.1" 400 1 "-" "Mozilla/5.0"', True),
    ('"GET /search?q=1+UNION+SELECT+pass HTTP/1.1" 400 1 "-" "Mozilla/5.0"', True),
    ('"GET /search?q=%3Cscript%3Ealert(1) HTTP/1.1" 400 1 "-" "Mozilla/5.0"', True),
    ('"GET / HTTP/1.1" 200 1 "-" "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/)"', True),
    ('"GET / HTTP/1.1" 200 1 "-" "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)"', True),
    ('"GET / HTTP/1.1" 200 1 "-" "sqlmap/1.7.2#stable (https://sqlmap.org)"', True),
    ('"GET /x HTTP/1.1" 404 1 "-" "gobuster/3.6"', True),
    ('"GET /x HTTP/1.1" 404 1 "-" "Fuzz Faster U Fool v2.1.0"', True),
    ('"GET / HTTP/1.1" 200 1 "-" "Mozilla/5.0 (compatible; Wapiti/3.0)"', True),
    ('"GET / HTTP/1.1" 200 1 "-" "Mozilla/5.0 (Hydra)"', True),
    ('"GET / HTTP/1.1" 400 1 "-" "masscan/1.3 (https://github.com/robertdavidgraham/masscan)"', True),
    ('"GET / HTTP/1.1" 200 1 "-" "Mozilla/5.0 zgrab/0.x"', True),
    ('"GET /x HTTP/1.1" 404 1 "-" "DIRB"', True),
    ('"GET /records/42 HTTP/1.1" 200 1 "-" "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"', False),
    ('"GET /records/view HTTP/1.1" 200 1 "https://x/?q=union select" "Mozilla/5.0"', False),
]


@pytest.mark.parametrize(("request_part", "is_scan"), SCAN)
def test_scan_filter(request_part: str, is_scan: bool) -> None:
    """Scanner paths and user agents in the access log match; ordinary requests do not."""
    flt = Filter(load_filter(FILTERS / "medvault-scan.conf"))
    got = flt.match(f"192.0.2.44 - - [26/Nov/2026:01:53:40 +0000] {request_part}", NOW)
    assert isinstance(got, Failure) == is_scan
    if is_scan:
        assert got.host == "192.0.2.44" and got.time == 1795658020.0
